/**
 * The project's container images (docker/serve.Dockerfile, docker/train.Dockerfile), built with the
 * Docker CLI users already have. For machines without a registry (CI here), a base image equivalent to
 * the official `node:20-bookworm-slim` is made from Debian packages (debootstrap) plus this machine's
 * Node, and a private `dockerd` runs the build and the container; both are used by `make image-test`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const IMAGES = {
  serve: { dockerfile: 'docker/serve.Dockerfile', tag: 'convo-mlops/serve' },
  train: { dockerfile: 'docker/train.Dockerfile', tag: 'convo-mlops/train' },
} as const;
export type ImageName = keyof typeof IMAGES;

/** The official base the Dockerfiles default to (their ARG BASE_IMAGE). */
export const OFFICIAL_BASE = 'node:20-bookworm-slim';

export interface Docker {
  /** DOCKER_HOST for the CLI, e.g. unix:///tmp/x/docker.sock; undefined = the CLI's own default. */
  host?: string;
}

const dockerEnv = (d: Docker): NodeJS.ProcessEnv => ({
  ...process.env,
  ...(d.host ? { DOCKER_HOST: d.host } : {}),
  // The classic builder: it needs no buildx plugin and pulls nothing for the Dockerfile syntax.
  DOCKER_BUILDKIT: process.env.DOCKER_BUILDKIT ?? '0',
});

/** Runs `docker args...` and returns its stdout; a failure carries docker's own stderr. */
export async function docker(d: Docker, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  try {
    const { stdout } = await run('docker', args, {
      env: dockerEnv(d),
      maxBuffer: 256 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 0,
    });
    return stdout;
  } catch (e) {
    // A failed build explains itself on stdout (the step's own output), other commands on stderr.
    const err = e as { stdout?: string; stderr?: string; message: string };
    const said = `${err.stdout ?? ''}\n${err.stderr || err.message}`.trim();
    throw new Error(`docker ${args.slice(0, 2).join(' ')} failed:\n${said.slice(-4000)}`);
  }
}

// ---- a private Docker engine -------------------------------------------------------------------

export interface DockerDaemon extends Docker {
  host: string;
  stop: () => Promise<void>;
}

/**
 * Starts `dockerd` with all its state under `dir` (its own socket, data root and exec root), so a test
 * neither needs nor touches a system engine. No bridge and no iptables: containers use the host's
 * network, which keeps their traffic on loopback.
 */
export async function startDockerd(dir: string): Promise<DockerDaemon> {
  fs.mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, 'docker.sock');
  const log = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--data-root',
      path.join(dir, 'root'),
      '--exec-root',
      path.join(dir, 'exec'),
      '--pidfile',
      path.join(dir, 'dockerd.pid'),
      '-H',
      `unix://${sock}`,
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  const d: DockerDaemon = {
    host: `unix://${sock}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      // dockerd leaves its network-namespace and overlay mounts behind; the folder can't be removed under them.
      const mounts = fs
        .readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(`${path.resolve(dir)}/`))
        .reverse();
      for (const m of mounts) await run('umount', ['--lazy', m]).catch(() => undefined);
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`dockerd exited (${child.exitCode}); see ${path.join(dir, 'dockerd.log')}`);
    const ok = await docker(d, ['version', '--format', '{{.Server.Version}}']).then(
      () => true,
      () => false,
    );
    if (ok) return d;
    if (Date.now() > deadline) {
      await d.stop();
      throw new Error(`dockerd did not answer within 60 s; see ${path.join(dir, 'dockerd.log')}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

// ---- a base image without a registry -----------------------------------------------------------

/**
 * Builds `tag`: Debian bookworm (minbase, from Debian's own packages) with this machine's Node and npm
 * under /usr/local, as in the official node:20-bookworm-slim. For machines that reach no image
 * registry; users with one build on the official base.
 */
export async function buildLocalBase(
  d: Docker,
  tag: string,
  workDir: string,
  opts: { mirror?: string; log?: (m: string) => void } = {},
): Promise<void> {
  const root = path.join(workDir, 'rootfs');
  const mirror = opts.mirror ?? process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  opts.log?.(`==> base image ${tag}: debootstrap --variant=minbase bookworm (${mirror})`);
  await run('debootstrap', ['--variant=minbase', 'bookworm', root, mirror], { maxBuffer: 64 * 1024 * 1024 });
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor !== 20)
    throw new Error(`the local base carries this machine's Node, which is ${process.version}, not 20`);
  const npmDir = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  if (!fs.existsSync(path.join(npmDir, 'bin', 'npm-cli.js'))) throw new Error(`npm not found at ${npmDir}`);
  fs.copyFileSync(process.execPath, path.join(root, 'usr/local/bin/node'));
  fs.chmodSync(path.join(root, 'usr/local/bin/node'), 0o755);
  fs.cpSync(npmDir, path.join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
  fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/local/bin/npm'));
  fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/local/bin/npx'));
  // apt's lists and caches are not part of a slim image.
  for (const p of ['var/cache/apt/archives', 'var/lib/apt/lists'])
    for (const f of fs.readdirSync(path.join(root, p)))
      if (f.endsWith('.deb') || p.endsWith('lists')) fs.rmSync(path.join(root, p, f), { recursive: true, force: true });
  const tar = path.join(workDir, 'rootfs.tar');
  await run('tar', ['-C', root, '--numeric-owner', '-cf', tar, '.'], { maxBuffer: 16 * 1024 * 1024 });
  await docker(d, [
    'import',
    '--change',
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--change',
    'CMD ["node"]',
    tar,
    tag,
  ]);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(tar, { force: true });
}

// ---- building the project's images ---------------------------------------------------------------

export interface BuildOptions {
  /** BASE_IMAGE build argument; the Dockerfiles' default (the official Node 20 image) when unset. */
  base?: string;
  /** PYTHON_IMAGE build argument of the training image (default: the official python:3.11-slim-bookworm). */
  pythonBase?: string;
  /** Tag; IMAGES[name].tag when unset. */
  tag?: string;
  /** A CA bundle the build must trust to reach npm and PyPI (a TLS-intercepting proxy), if any. */
  caFile?: string;
  network?: 'host' | 'default';
}

/** `docker build` of one of the project's images from the project root; returns its tag. */
export async function buildImage(d: Docker, root: string, name: ImageName, o: BuildOptions = {}): Promise<string> {
  const image = IMAGES[name];
  const tag = o.tag ?? image.tag;
  const caCopy = path.join(root, 'docker', 'build-ca', 'extra-ca.crt');
  if (o.caFile) fs.copyFileSync(o.caFile, caCopy);
  try {
    await docker(d, [
      'build',
      '--file',
      path.join(root, image.dockerfile),
      '--tag',
      tag,
      ...(o.base ? ['--build-arg', `BASE_IMAGE=${o.base}`] : []),
      ...(o.pythonBase && name === 'train' ? ['--build-arg', `PYTHON_IMAGE=${o.pythonBase}`] : []),
      ...(o.network === 'host' ? ['--network', 'host'] : []),
      root,
    ]);
  } finally {
    fs.rmSync(caCopy, { force: true });
  }
  return tag;
}

/** A container's output, stdout and stderr together (the server logs to both). */
export async function containerLogs(d: Docker, id: string): Promise<string> {
  const { stdout, stderr } = await run('docker', ['logs', id], {
    env: dockerEnv(d),
    maxBuffer: 64 * 1024 * 1024,
  }).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
  return `${stdout}${stderr}`;
}

/** Whether a container is still running (false once it exited, e.g. the server crashed at start). */
export async function containerRunning(d: Docker, id: string): Promise<boolean> {
  return (await docker(d, ['inspect', '--format', '{{.State.Running}}', id])).trim() === 'true';
}

/** The image's size as Docker reports it (bytes, all layers). */
export async function imageSize(d: Docker, tag: string): Promise<number> {
  return Number((await docker(d, ['image', 'inspect', '--format', '{{.Size}}', tag])).trim());
}
