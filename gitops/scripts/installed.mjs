// Loads a command's body once its options are read. The body imports this folder's packages, and a
// static import of a package that is not installed fails before any code could catch it: `--help`
// would fail too, and a fresh copy of the folder would meet a stack trace instead of "run npm ci".
// This module imports nothing but Node's own.
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const GITOPS_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

/** import(url), with a package that is not installed said in one line: which, and what to run. */
export async function importInstalled(url) {
  try {
    return await import(url);
  } catch (error) {
    const missing = error?.code === "ERR_MODULE_NOT_FOUND" ? /Cannot find package '([^']+)'/.exec(error.message)?.[1] : undefined;
    if (missing !== undefined) throw new Error(`its dependency ${missing} is not installed: run npm ci in ${GITOPS_DIR} first`);
    throw error;
  }
}
