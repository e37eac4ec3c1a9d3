/**
 * What tslab (the notebooks' TypeScript kernel) compiles differently from a module (pure). tslab rewrites
 * each reference to an earlier cell's top-level name so that the later cell can see it, but not a shorthand
 * property: `{ spec }` in a later cell throws `ReferenceError: spec is not defined` when it runs, although
 * it type-checks and lints. Nor may a cell say `export`: tslab exports every top-level name itself, so a
 * written one is a redeclaration. `make lint` reports both, before a notebook is run.
 */
import ts from 'typescript';

export interface CellPitfall {
  /** Index of the cell among the notebook's code cells. */
  cell: number;
  /** 1-based line within the cell. */
  line: number;
  name: string;
  message: string;
}

/** Names a cell declares at its top level (variables, functions, classes, enums, imports). */
function topLevelNames(sf: ts.SourceFile): string[] {
  const names: string[] = [];
  const bindingNames = (b: ts.BindingName): void => {
    if (ts.isIdentifier(b)) names.push(b.text);
    else for (const e of b.elements) if (!ts.isOmittedExpression(e)) bindingNames(e.name);
  };
  for (const s of sf.statements) {
    if (ts.isVariableStatement(s)) for (const d of s.declarationList.declarations) bindingNames(d.name);
    else if ((ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s) || ts.isEnumDeclaration(s)) && s.name)
      names.push(s.name.text);
    else if (ts.isImportDeclaration(s) && s.importClause && !s.importClause.isTypeOnly) {
      const c = s.importClause;
      if (c.name) names.push(c.name.text);
      const b = c.namedBindings;
      if (b && ts.isNamespaceImport(b)) names.push(b.name.text);
      if (b && ts.isNamedImports(b)) for (const e of b.elements) if (!e.isTypeOnly) names.push(e.name.text);
    }
  }
  return names;
}

/** Shorthand properties in each code cell that name a top-level binding of an earlier cell. */
export function crossCellShorthands(cells: readonly string[]): CellPitfall[] {
  const earlier = new Set<string>();
  const found: CellPitfall[] = [];
  cells.forEach((source, cell) => {
    const sf = ts.createSourceFile(`cell${cell}.ts`, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const own = new Set(topLevelNames(sf));
    // A name the cell declares anywhere (a parameter, a local) is its own: tslab leaves those alone.
    const local = new Set(own);
    const collect = (node: ts.Node): void => {
      if (
        (ts.isVariableDeclaration(node) || ts.isParameter(node) || ts.isBindingElement(node)) &&
        ts.isIdentifier(node.name)
      )
        local.add(node.name.text);
      if ((ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node)) && node.name) local.add(node.name.text);
      ts.forEachChild(node, collect);
    };
    collect(sf);
    const visit = (node: ts.Node): void => {
      if (ts.isShorthandPropertyAssignment(node)) {
        const name = node.name.text;
        if (earlier.has(name) && !local.has(name))
          found.push({
            cell,
            line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1,
            name,
            message: `{ ${name} } names an earlier cell's variable, which tslab cannot see: write ${name}: ${name}`,
          });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
    // tslab exports every top-level name of a cell itself; a written `export` redeclares it (a compile
    // error in the kernel). make promote adds `export` to the module it writes.
    for (const st of sf.statements)
      if (ts.canHaveModifiers(st) && ts.getModifiers(st)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword))
        found.push({
          cell,
          line: sf.getLineAndCharacterOfPosition(st.getStart(sf)).line + 1,
          name: 'export',
          message: 'cells carry no `export`: tslab exports top-level names itself, and make promote adds it',
        });
    for (const n of own) earlier.add(n);
  });
  return found;
}
