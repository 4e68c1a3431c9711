/**
 * Shared recipe texts for the recipe tests. Not a test file itself; kept beside the tests
 * so each test reads as "this fixture, changed like so, gives that problem".
 */
export const SHA_A = `sha256:${"a".repeat(64)}`;
export const SHA_B = `sha256:${"b".repeat(64)}`;

export const VALID_RECIPE = `# Deploy the web tier
tools:
  - name: terraform
    version: "1.10.0"
    checksum: ${SHA_A}
    env:
      TF_IN_AUTOMATION: "1"
    network: true
  - name: jq
    version: "1.7"
    checksum: ${SHA_B}
steps:
  - terraform init
  - run: terraform plan -out plan.bin
    timeout: 1h30m
    cwd: ./infra//prod/
    env:
      TF_LOG: info
  - run: terraform apply plan.bin
    timeout: 600
`;

/** Replaces `line` (1-based) of `text` with `replacement`. */
export function withLine(text: string, line: number, replacement: string): string {
  const lines = text.split("\n");
  lines[line - 1] = replacement;
  return lines.join("\n");
}

/** The classic "billion laughs": nine levels of nine aliases each, 10^9 strings if expanded. */
export function billionLaughs(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = "abcdefghi";
  for (let i = 1; i < names.length; i++) {
    const prev = `*${names[i - 1]}`;
    lines.push(`${names[i]}: &${names[i]} [${Array(9).fill(prev).join(",")}]`);
  }
  lines.push("steps: [*i]");
  return lines.join("\n");
}
