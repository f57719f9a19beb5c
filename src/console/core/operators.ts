// SPDX-License-Identifier: UNLICENSED
// Who may see and change what in the console. Three roles, as providers run them: `admin` (the provider:
// everything), `msp` (a managed-service partner: only the units, segments and audit records of its own
// tenants), `read-only` (the provider's on-call view: everything, no change). Pure.
import { ConfigError } from '../../shared/errors.js';
import { array, formatPath, object, oneOf, optional, parseWith, string, type SchemaIssue } from '../../shared/schema/schema.js';

export type Role = 'admin' | 'msp' | 'read-only';
export const ROLES: readonly Role[] = ['admin', 'msp', 'read-only'];

export interface Operator {
  readonly name: string;
  readonly role: Role;
  /** The tenants an `msp` operator serves; empty for the other roles (they see all). */
  readonly tenants: readonly string[];
  /** `scrypt$N$r$p$salt$hash` (base64), written by `connector console operator add`; null: certificate only. */
  readonly password: string | null;
  /** SHA-256 of the DER of the client certificate this operator may log in with (hex, lowercase); null: none. */
  readonly certSha256: string | null;
}

const OPERATORS_SCHEMA = object({
  operators: array(
    object({
      name: string({ pattern: /^[A-Za-z0-9_.@-]{1,64}$/, hint: 'letters, digits, _ . @ -' }),
      role: oneOf(ROLES),
      tenants: optional(array(string()), []),
      password: optional(string({ pattern: /^scrypt\$/, hint: 'a scrypt hash written by `connector console operator add`' })),
      certSha256: optional(
        string({ pattern: /^[0-9a-f]{64}$/, hint: "the SHA-256 of the operator's certificate, 64 lowercase hex digits" }),
      ),
    }),
  ),
});

export function parseOperators(doc: unknown, file: string): Operator[] {
  const fail = (i: SchemaIssue): never => {
    throw new ConfigError(`${file}: ${formatPath(i.path)}`, i.problem);
  };
  const ops = parseWith(OPERATORS_SCHEMA, doc, fail).operators;
  const seen = new Set<string>();
  return ops.map((o, i) => {
    if (seen.has(o.name)) throw new ConfigError(`${file}: operators[${i}].name`, `"${o.name}" appears twice`);
    seen.add(o.name);
    if (o.role === 'msp' && o.tenants.length === 0) {
      throw new ConfigError(`${file}: operators[${i}].tenants`, 'an msp operator needs at least one tenant');
    }
    if (o.password === undefined && o.certSha256 === undefined) {
      throw new ConfigError(`${file}: operators[${i}]`, 'an operator needs a password, a certificate (certSha256) or both');
    }
    return Object.freeze({
      name: o.name,
      role: o.role,
      tenants: o.role === 'msp' ? Object.freeze([...o.tenants]) : [],
      password: o.password ?? null,
      certSha256: o.certSha256 ?? null,
    });
  });
}

/** Whether `op` may see what belongs to `tenant` (undefined: not yet claimed by any tenant). */
export function canSee(op: Operator, tenant: string | undefined): boolean {
  if (op.role !== 'msp') return true;
  return tenant !== undefined && op.tenants.includes(tenant);
}

/** Whether `op` may change what belongs to `tenant`: admins anything, an msp its own tenants only. */
export function canChange(op: Operator, tenant: string | undefined): boolean {
  if (op.role === 'admin') return true;
  if (op.role === 'msp') return tenant !== undefined && op.tenants.includes(tenant);
  return false;
}

/** The tenants `op` may see, out of `all`. */
export function visibleTenants(op: Operator, all: readonly string[]): string[] {
  return all.filter((t) => canSee(op, t));
}
