/**
 * What the project's markdown (README.md, docs/**) names that must exist: make targets, environment
 * variables, repository paths and links. Pure functions over strings; tests/unit/docs.test.ts feeds them
 * the real files and checks every name against the Makefile, the code and the working tree.
 *
 * The rules, so that a writer knows what is checked:
 * - **make targets**: `make [flags] [VAR=value ...] <target>` inside inline code or a fenced code block, with
 *   `make` in command position (start of the span or line, after `;`, `&&`, `|`, `$(`, a quote or `VAR=x `), so
 *   prose such as "make sure" or "the make targets" is not read. Only the first target after `make` is taken.
 * - **environment variables** (inside inline code or fenced blocks only): an assignment `NAME=` where NAME is
 *   UPPER_CASE (make variables such as `TASK=` count: the Makefile reads them), `$NAME` / `${NAME}`, and an
 *   inline code span that is exactly one UPPER_CASE name containing an underscore (`MLFLOW_TRACKING_URI`).
 *   Upper-case words without an underscore (`TPE`, `HEALTHCHECK`) are not variables.
 * - **paths**: an inline code span with no spaces that contains a `/` and whose first segment is a top-level
 *   entry of the repository (`src/kinds/scope/rule.ts`, `notebooks/06_open_set.ipynb`, `./src/...`), and every
 *   relative link target (`[text](serving.md#routes)`, resolved from the markdown file's folder; the anchor is
 *   checked against the target's headings). A path with a placeholder (`<task>`, `*`, `...`, `YYYY`, `{a,b}`,
 *   `$X`, `|`) is checked up to its last literal folder.
 */

export interface Mention {
  /** The name as checked: a target, a variable, or a repository-relative path (no leading ./). */
  name: string;
  /** 1-based line in the markdown file. */
  line: number;
}

export interface LinkMention extends Mention {
  /** The `#fragment`, without `#`, when the link has one. */
  anchor?: string;
}

export interface DocNames {
  makeTargets: Mention[];
  envVars: Mention[];
  /** Paths written in inline code (repository-relative as written). */
  codePaths: Mention[];
  /** Relative link targets, resolved against the markdown file's folder (repository-relative). */
  links: LinkMention[];
  /** Links to an anchor in the same file (`#section`). */
  localAnchors: Mention[];
}

/** Characters that make a path a pattern rather than one file. */
const PLACEHOLDER = /[<>*{}|$]|\.\.\.|YYYY|…/;

/** Lines of a markdown file, split into fenced code and the rest (fence markers themselves are neither). */
export function splitMarkdown(markdown: string): { line: number; text: string; fenced: boolean }[] {
  const out: { line: number; text: string; fenced: boolean }[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, i) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      return;
    }
    out.push({ line: i + 1, text, fenced: fence !== undefined });
  });
  return out;
}

/** Inline code spans of one (non-fenced) line. */
export function codeSpans(text: string): string[] {
  const spans: string[] = [];
  const re = /(`+)([^`]|[^`].*?[^`])\1(?!`)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) spans.push(m[2]!.trim());
  return spans;
}

/** `make` in command position: line start (after an optional `$ ` prompt), after `;`, `&`, `|`, `(`, a quote, or `VAR=x `. */
const MAKE_RE =
  /(?:^\s*(?:\$\s+)?|[;&|(`"']\s*|(?<![\w$.-])[A-Z][A-Z0-9_]*=\S*\s+)make\s+(?:(?:-[a-zA-Z]+|--[\w-]+|[A-Z][A-Z0-9_]*=\S*)\s+)*([a-z][a-z0-9-]*)/g;
const ASSIGN_RE = /(?<![\w$.-])([A-Z][A-Z0-9_]*)=(?!=)/g;
const DOLLAR_RE = /\$\{?([A-Z][A-Z0-9_]*)/g;
const LONE_VAR_RE = /^\$?\{?([A-Z][A-Z0-9]*_[A-Z0-9_]*)\}?$/;
const LINK_RE = /!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;

/**
 * Repository-relative path of a code span, or undefined when the span is not a path: it must contain a
 * slash, no spaces, no URL scheme, and start with one of `topLevel` (the repository's top-level entries).
 */
export function codePath(span: string, topLevel: ReadonlySet<string>): string | undefined {
  if (/\s/.test(span) || /^[a-z][\w+.-]*:/i.test(span) || !span.includes('/')) return undefined;
  const p = span.replace(/^\.\//, '');
  const first = p.split('/')[0]!;
  return topLevel.has(first) ? p : undefined;
}

/** Every name a markdown file mentions, by the rules at the top of this file. */
export function extractNames(markdown: string, topLevel: ReadonlySet<string>, docDir = '.'): DocNames {
  const names: DocNames = { makeTargets: [], envVars: [], codePaths: [], links: [], localAnchors: [] };
  const code = (text: string, line: number) => {
    for (const m of text.matchAll(MAKE_RE)) names.makeTargets.push({ name: m[1]!, line });
    for (const m of text.matchAll(ASSIGN_RE)) names.envVars.push({ name: m[1]!, line });
    for (const m of text.matchAll(DOLLAR_RE)) names.envVars.push({ name: m[1]!, line });
  };
  for (const { line, text, fenced } of splitMarkdown(markdown)) {
    if (fenced) {
      code(text, line);
      continue;
    }
    for (const span of codeSpans(text)) {
      code(span, line);
      const lone = LONE_VAR_RE.exec(span);
      if (lone) names.envVars.push({ name: lone[1]!, line });
      const p = codePath(span, topLevel);
      if (p) names.codePaths.push({ name: p, line });
    }
    const prose = text.replace(/(`+)([^`]|[^`].*?[^`])\1(?!`)/g, '');
    for (const m of prose.matchAll(LINK_RE)) {
      const target = m[1]!;
      if (/^[a-z][\w+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      if (target.startsWith('#')) {
        names.localAnchors.push({ name: target.slice(1), line });
        continue;
      }
      const [file, anchor] = target.split('#', 2) as [string, string | undefined];
      names.links.push({ name: joinPath(docDir, decodeURI(file)), line, ...(anchor ? { anchor } : {}) });
    }
  }
  return names;
}

/** `a/b` + `../c/d.md` -> `a/c/d.md`; repository-relative, no leading `./`. */
export function joinPath(dir: string, rel: string): string {
  const parts = rel.startsWith('/') ? [] : dir.split('/').filter((s) => s && s !== '.');
  for (const seg of rel.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return parts.join('/');
}

/**
 * The part of a path that names something real: the whole path, or, when it holds a placeholder, the
 * folders before the first segment that does.
 */
export function literalPrefix(p: string): { prefix: string; pattern: boolean } {
  const segs = p.replace(/\/$/, '').split('/');
  const i = segs.findIndex((s) => PLACEHOLDER.test(s));
  return i < 0 ? { prefix: segs.join('/'), pattern: false } : { prefix: segs.slice(0, i).join('/'), pattern: true };
}

/** Targets a Makefile defines as rules (`name: ...`), not variables (`:=`, `::=`) nor pattern/stamp rules. */
export function makefileTargets(makefile: string): Set<string> {
  const targets = new Set<string>();
  for (const line of makefile.split('\n')) {
    const m = /^([A-Za-z0-9][\w.-]*(?:[ \t]+[A-Za-z0-9][\w.-]*)*)[ \t]*:(?![=:])/.exec(line);
    if (m) for (const t of m[1]!.split(/[ \t]+/)) targets.add(t);
  }
  return targets;
}

/** A .gitignore pattern as a test on a repository-relative path (and every folder above it). */
export function gitignoreMatcher(gitignore: string): (p: string) => boolean {
  const rules = gitignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'))
    .map((pattern) => {
      const body = pattern.replace(/^\//, '').replace(/\/$/, '');
      const anchored = body.includes('/');
      const glob = body
        .split('')
        .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('');
      return { re: new RegExp(`^${glob}$`), anchored };
    });
  return (p) => {
    const segs = p.replace(/\/$/, '').split('/');
    // The path itself or any folder above it: a path under an ignored folder is ignored, and a folder
    // rule (`models/cache/`) also covers the folder written without its slash.
    for (let n = 1; n <= segs.length; n++) {
      const sub = segs.slice(0, n).join('/');
      if (rules.some((r) => (r.anchored ? r.re.test(sub) : r.re.test(segs[n - 1]!)))) return true;
    }
    return false;
  };
}

/** GitHub's anchor for a heading text (lower case, punctuation dropped, spaces to dashes). */
export function githubSlug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a markdown file's headings define (duplicates get -1, -2 as on GitHub). */
export function headingAnchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text, fenced } of splitMarkdown(markdown)) {
    const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (!m) continue;
    const slug = githubSlug(m[1]!);
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Whole-word occurrence of an identifier (underscores count as word characters). */
export function mentionsWord(text: string, word: string): boolean {
  const esc = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![A-Za-z0-9_])${esc}(?![A-Za-z0-9_])`).test(text);
}
