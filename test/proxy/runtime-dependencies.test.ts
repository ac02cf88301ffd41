// What ships is dist/proxy, compiled from proxy/, and the image installs only package.json's
// "dependencies" (npm ci --omit=dev). An import satisfied by a devDependency, or by a package another
// one happens to pull in (undici did both), works in every test and fails in the image or after the next
// upgrade. So every runtime import of proxy/** must name a declared dependency.
import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import t from 'tap'
import ts from 'typescript'

const root = new URL('../../', import.meta.url)
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  dependencies: Record<string, string>
}

/** The modules a source file loads at run time: static imports and re-exports that are not type-only, and import(). */
function runtimeImports(source: string): string[] {
  const file = ts.createSourceFile('x.ts', source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const found: string[] = []
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly) {
      const named = node.importClause?.namedBindings
      const onlyTypes =
        named !== undefined &&
        ts.isNamedImports(named) &&
        node.importClause?.name === undefined &&
        named.elements.length > 0 &&
        named.elements.every((element) => element.isTypeOnly)
      if (!onlyTypes) found.push((node.moduleSpecifier as ts.StringLiteral).text)
    } else if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.moduleSpecifier !== undefined) {
      found.push((node.moduleSpecifier as ts.StringLiteral).text)
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push(node.arguments[0].text)
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  return found
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`; undefined for node builtins and relative paths. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('node:') || builtinModules.includes(specifier)) {
    return undefined
  }
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

const shipped = readdirSync(new URL('proxy', root), { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.ts'))
  .map((file) => `proxy/${file}`)

t.test('every package shipped code imports at run time is in "dependencies"', async (t) => {
  t.ok(shipped.length > 10, 'found the sources')
  const used = new Set<string>()
  for (const file of shipped) {
    for (const specifier of runtimeImports(readFileSync(new URL(file, root), 'utf8'))) {
      const name = packageOf(specifier)
      if (name === undefined) continue
      used.add(name)
      t.ok(name in pkg.dependencies, `${file} imports ${name}, a dependency`)
    }
  }
  t.ok(used.has('undici') && used.has('fastify'), 'the forwarder and the server were read')
})

t.test('type-only imports are not counted, runtime ones are', async (t) => {
  t.same(
    runtimeImports(
      [
        "import type { A } from 'types-only'",
        "import { type B } from 'inline-types-only'",
        "import { type C, d } from 'mixed'",
        "import e, {\n  type F,\n} from 'default-and-type'",
        "import 'side-effect'",
        "export { g } from 're-export'",
        "export type { H } from 'type-re-export'",
        "const i = await import('dynamic')",
      ].join('\n'),
    ),
    ['mixed', 'default-and-type', 'side-effect', 're-export', 'dynamic'],
  )
})
