/** A throwaway CA in a temp folder (see test-certs.mjs). */
export interface TestCa {
  readonly dir: string
  /** Runs openssl with `args` in `dir`. */
  run(...args: string[]): void
  /** Writes `name.pem` / `name.key`, signed by the CA, for subject `cn` and subjectAltName `san`. */
  leaf(name: string, cn: string, san: string, usage?: string): void
}
export function makeTestCa(prefix: string, caName: string): TestCa
