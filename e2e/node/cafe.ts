/**
 * The cafe test's tools: a TCP scan of the node from the LAN network namespace (what a stranger on
 * the cafe's Wi-Fi can reach) or from the node itself, and the list of every socket listening on the node.
 */
import { NODE_ADDRESS, type TestNode } from "./node";

/** Connects to every port (concurrently, with a short timeout) and prints the ones that accept. */
const SCANNER = `
const net = require("node:net");
const [host, first, last] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const open = [];
let next = first;
function probe(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (isOpen) => { if (isOpen) open.push(port); socket.destroy(); resolve(); };
    socket.setTimeout(700, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
async function worker() { while (next <= last) await probe(next++); }
Promise.all(Array.from({ length: 512 }, worker)).then(() => console.log(JSON.stringify(open)));
`;

/** The TCP ports of `address` in `ports` that accept a connection when `exec` runs the scanner. */
function scan(exec: (command: string, args: string[]) => string, address: string, ports: [number, number]): number[] {
  const output = exec(process.execPath, ["-e", SCANNER, address, String(ports[0]), String(ports[1])]);
  return (JSON.parse(output) as number[]).sort((a, b) => a - b);
}

/** The TCP ports of `address` that accept a connection from the LAN (all 65535 by default). */
export function scanFromLan(node: TestNode, address = NODE_ADDRESS, ports: [number, number] = [1, 65535]): number[] {
  return scan((command, args) => node.execOnLan(command, args), address, ports);
}

/** The same scan from the node itself: the positive control for what the LAN must not reach. */
export function scanFromNode(node: TestNode, address: string, ports: [number, number]): number[] {
  return scan((command, args) => node.exec(command, args), address, ports);
}

export interface ListeningSocket {
  readonly protocol: "tcp" | "udp";
  readonly address: string;
  readonly port: number;
  readonly process: string;
}

/** Every listening TCP and bound UDP socket in the node's network namespace, with its process. */
export function listeningSockets(node: TestNode): ListeningSocket[] {
  return node
    .exec("ss", ["-Hlntup"])
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [protocol, , , , local, , users = ""] = line.split(/\s+/);
      const separator = local.lastIndexOf(":");
      return {
        protocol: protocol as "tcp" | "udp",
        address: local
          .slice(0, separator)
          .replace(/^\[|\]$/g, "")
          .replace(/%.*$/, ""),
        port: Number(local.slice(separator + 1)),
        process: /\(\("([^"]+)"/.exec(users)?.[1] ?? "?",
      };
    });
}
