import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** The headless Chromium the visual checks use (Debian's `chromium`; CHROMIUM_BIN to point elsewhere). */
export function chromiumBin(): string {
  const found = [process.env.CHROMIUM_BIN, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
    (p): p is string => !!p && fs.existsSync(p),
  );
  if (!found)
    throw new Error(
      'headless Chromium not found: the report and API-docs checks open pages as a browser does. ' +
        'Install it (`apt-get install chromium`, as `make setup` (`make tools`) does when run as root) or set CHROMIUM_BIN.',
    );
  return found;
}

const flags = (width: number, height: number) => [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--hide-scrollbars',
  `--window-size=${width},${height}`,
  // Let scripts (plotly, Swagger UI) finish before the page is read.
  '--virtual-time-budget=20000',
];

/** The DOM after the page's scripts ran, as a browser 1280 px wide renders it. */
export async function renderedDom(url: string, width = 1280, height = 2000): Promise<string> {
  const { stdout } = await exec(chromiumBin(), [...flags(width, height), '--dump-dom', url], {
    maxBuffer: 256 << 20,
    timeout: 120_000,
  });
  return stdout;
}

/** A PNG of the page's first `height` pixels at `width`. */
export async function screenshot(url: string, file: string, width = 1280, height = 2000): Promise<void> {
  await exec(chromiumBin(), [...flags(width, height), `--screenshot=${file}`, url], { timeout: 120_000 });
  if (!fs.existsSync(file)) throw new Error(`Chromium wrote no screenshot of ${url}`);
}
