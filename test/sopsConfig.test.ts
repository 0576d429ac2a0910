import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderSopsConfig } from "../components/lib/sopsConfig";

const LOCAL = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

describe("renderSopsConfig", () => {
  it("encrypts Secret data to both clusters' recipients", async () => {
    const age = await import("age-encryption");
    const remote = await age.identityToRecipient(await age.generateX25519Identity());
    const config = parse(renderSopsConfig([LOCAL, remote, LOCAL]));
    expect(config).toEqual({
      creation_rules: [{ path_regex: "\\.ya?ml$", encrypted_regex: "^(data|stringData)$", age: `${LOCAL},${remote}` }],
    });
  });

  it.each([[[]], [["age1notarecipient"]], [["AGE-SECRET-KEY-1QQQQ"]]])("refuses %j", (recipients) => {
    expect(() => renderSopsConfig(recipients)).toThrow();
  });
});
