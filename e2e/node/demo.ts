/**
 * `npm run demo`: the whole workflow on one machine, left running. The node rung's workstation (a test
 * cluster of k0s's components, not k0s; the Git and chart servers, the pulumi CLI) with dev and local-staging brought up as the README
 * says, Flux converged, and the isolation table printed. The API and Traefik's NodePort are
 * forwarded to 127.0.0.1 on this machine, so a browser and kubectl can reach them. Ctrl-C stops it
 * all and cleans up.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { freePort, onTermination, startDaemon, type Daemon } from "../harness/processes";
import { deployProbes, isolationTable, probeAll } from "./isolation";
import { ADMIN_KUBECONFIG, KUBECTL } from "./node";
import { startWorkstation } from "./workstation";

async function main(): Promise<void> {
  console.log("Starting a test cluster of k0s's components with k0s/workstation.yaml (a few minutes)...");
  const workstation = await startWorkstation();
  const { node, cli, repo } = workstation;
  const forwards: Daemon[] = [];
  const stop = async () => {
    for (const forward of forwards) await forward.stop(1_000);
    await workstation.stop();
  };
  // Ctrl-C (SIGINT) or SIGTERM runs this; the node itself also dies with this process.
  onTermination({ async: stop, sync: () => undefined });

  /** Publishes a TCP address inside the node on 127.0.0.1 of this machine. */
  const publish = async (name: string, target: string, preferred: number) => {
    const socket = await node.forward(name, target);
    const port = await freePort("127.0.0.1", preferred);
    forwards.push(
      startDaemon(`host-${name}`, "socat", [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${socket}`], {
        logDir: node.dir,
      }),
    );
    return port;
  };

  console.log("pulumi up --stack dev, then --stack local-staging...");
  workstation.bringUp("dev");
  workstation.bringUp("local-staging");
  console.log("Waiting for Flux to sync the GitOps repository...");
  await workstation.fluxSynced();
  deployProbes(node, ["dev", "staging", "traefik"]);
  const table = isolationTable(probeAll(node, ["dev", "staging", "traefik"], ["dev", "staging"]));

  const admin = parse(fs.readFileSync(path.join(`/proc/${node.pid}/root`, ADMIN_KUBECONFIG), "utf8"));
  const apiServer = new URL(admin.clusters[0].cluster.server);
  const apiPort = await publish("demo-api", apiServer.host, 16443);
  admin.clusters[0].cluster.server = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = path.join(node.dir, "demo.kubeconfig");
  fs.writeFileSync(kubeconfig, stringify(admin), { mode: 0o600 });
  const webPort = await publish("demo-web", "127.0.0.1:30080", 30080);

  console.log(`
The platform is running. Everything stays on this machine (its own namespaces; forwards on 127.0.0.1).

  kubeconfig       ${kubeconfig}
                   ${KUBECTL[0]} --kubeconfig ${kubeconfig} get pods -A
  sample app dev   http://podinfo.dev.localtest.me:${webPort}
  sample app stg   http://podinfo.staging.localtest.me:${webPort}
                   (offline: curl -H 'Host: podinfo.dev.localtest.me' http://127.0.0.1:${webPort})
  GitOps repo      ${repo.workDir}   (commit, then git push origin main: Flux applies it within a minute)
  pulumi           cd ${cli.projectDir}
                   export PULUMI_BACKEND_URL=${cli.env.PULUMI_BACKEND_URL} PULUMI_CONFIG_PASSPHRASE=${cli.env.PULUMI_CONFIG_PASSPHRASE}

Isolation, probed by kube-router's enforcement:
${table}

Ctrl-C stops the node and removes everything.`);
  setInterval(() => undefined, 60_000);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
