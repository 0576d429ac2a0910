/**
 * Where e2e/toolchain/build.sh puts what it builds: outside the clone, so a fresh clone on the same
 * machine reuses it (the same resolution as e2e/toolchain/lib.sh).
 */
import * as os from "node:os";
import * as path from "node:path";

export const TOOLCHAIN =
  process.env.K0S_PLATFORM_TOOLCHAIN ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "k0s-platform", "toolchain");
export const TOOLCHAIN_BIN = path.join(TOOLCHAIN, "bin");
export const TOOLCHAIN_IMAGES = path.join(TOOLCHAIN, "images");
/** Flux's install manifest, assembled offline (e2e/toolchain/flux-install). */
export const FLUX_INSTALL_MANIFEST = path.join(TOOLCHAIN, "flux", "install.yaml");
/** cert-manager's chart at the version gitops/ pins, packaged (cert-manager-<version>.tgz). */
export const CERT_MANAGER_CHARTS = path.join(TOOLCHAIN, "cert-manager");
