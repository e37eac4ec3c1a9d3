/**
 * Writing CSV that people open in spreadsheets. Texts here are written by customers, and a spreadsheet
 * runs a cell that starts with = + - @ as a formula, so such a field gets a leading ' (OWASP's advice
 * for CSV injection); readers undo it with `undefuseFormula` against the original.
 */

const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV field (RFC 4180 quoting), formula-guarded when it is a string. */
export function csvField(value: string | number | boolean): string {
  let s = String(value);
  if (typeof value === 'string' && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvLine = (values: readonly (string | number | boolean)[]): string => values.map(csvField).join(',');

/** The original text when `read` is it with csvField's guard in front; else `read` unchanged. */
export const undefuseFormula = (read: string, original: string): string =>
  read.startsWith("'") && !original.startsWith("'") && read.slice(1) === original ? original : read;
