// Validate an AsyncAPI document with the official parser (@asyncapi/parser): `node validate.cjs <modules> <file>`.
// <modules> is the folder `make asyncapi-parser` installed it into; prints the diagnostics as JSON, exits 1 on an error.
const fs = require("fs");
const path = require("path");

async function main() {
  const [modules, file] = process.argv.slice(2);
  const { Parser, DiagnosticSeverity } = require(path.join(path.resolve(modules), "node_modules", "@asyncapi", "parser"));
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(file, "utf8"), { source: path.resolve(file) });
  const shown = diagnostics.map((d) => ({
    severity: ["error", "warning", "info", "hint"][d.severity],
    code: d.code,
    message: d.message,
    path: d.path.join("."),
  }));
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  const summary = document ? { version: document.version(), channels: document.channels().length, messages: document.allMessages().length } : null;
  process.stdout.write(JSON.stringify({ valid: document !== undefined && errors.length === 0, summary, diagnostics: shown }, null, 1) + "\n");
  process.exit(document !== undefined && errors.length === 0 ? 0 : 1);
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(2);
});
