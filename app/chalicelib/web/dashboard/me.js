// Who is signed in, as SESami sees them: the tenant, the role and the permissions it grants
// (GET /account), asked once per session. Pages use it to hide what the role cannot do; the
// server still refuses it (every route checks its permission).
import { get, session } from "./api.js";

let cached = null;
let cachedFor = null;

export function me() {
  const s = session.get();
  const who = s ? s.email || s.id_token : null;
  if (!cached || cachedFor !== who) {
    cachedFor = who;
    cached = get("account").catch((e) => {
      cached = null;
      throw e;
    });
  }
  return cached;
}

/** Forget the role (after accepting an invitation, or signing out). */
export function forgetMe() {
  cached = null;
  cachedFor = null;
}

export const can = (account, permission) => Boolean(account && (account.permissions || []).includes(permission));
