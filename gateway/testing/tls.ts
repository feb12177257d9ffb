/**
 * A certificate authority for tests, made with openssl (Debian's, as a user would): a CA, a
 * server certificate for 127.0.0.1 and localhost, and client certificates whose subject CN is a
 * device id. Files are PEM in `dir`.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** A client certificate and key signed by the CA, with subject CN `cn`. */
  clientCertificate(cn: string): { readonly certFile: string; readonly keyFile: string; readonly cert: Buffer; readonly key: Buffer };
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** Makes a CA and a server certificate in `dir` (EC P-256: fast to make and to handshake). */
export function makeTestPki(dir: string): TestPki {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(dir, ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=jamgate test CA"]);
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  openssl(dir, ["req", "-new", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "server.ext",
  ]);
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  const read = (name: string) => readFileSync(join(dir, name));
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server.key"),
    ca: read("ca.pem"),
    cert: read("server.pem"),
    key: read("server.key"),
    clientCertificate(cn) {
      openssl(dir, ["req", "-new", ...ec, "-keyout", `${cn}.key`, "-out", `${cn}.csr`, "-subj", `/CN=${cn}`]);
      openssl(dir, [
        "x509",
        "-req",
        "-in",
        `${cn}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${cn}.pem`,
        "-days",
        "2",
        "-extfile",
        "client.ext",
      ]);
      return { certFile: join(dir, `${cn}.pem`), keyFile: join(dir, `${cn}.key`), cert: read(`${cn}.pem`), key: read(`${cn}.key`) };
    },
  };
}
