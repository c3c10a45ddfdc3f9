/**
 * The relay's TLS identity. With no --cert/--key, the relay makes a self-signed ECDSA P-256 certificate in its
 * data directory on first start (key file mode 0600) and reuses it afterwards, so the SPKI pin that agents and
 * desktops were given stays valid across restarts.
 */
import 'reflect-metadata'; // @peculiar/x509 uses tsyringe, which needs the Reflect metadata API loaded first
import { createPrivateKey, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { spkiSha256 } from '../protocol/relay-handshake';

export const CERT_FILE_NAME = 'relay-cert.pem';
export const KEY_FILE_NAME = 'relay-key.pem';

export interface RelayCertificate {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
  /** 'sha256/<base64 of SHA-256 of the certificate's SubjectPublicKeyInfo DER>' */
  pin: string;
  /** The same 32 bytes as the pin: the relay id the handshake binds every login to. */
  relayId: Buffer;
  /** True when this start created the certificate. */
  created: boolean;
}

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  constructor(
    readonly code: 'cert_unreadable' | 'cert_invalid' | 'key_unreadable' | 'key_mismatch' | 'key_permissions',
    message: string,
  ) {
    super(message);
  }
}


function pemBlock(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Hostnames and addresses the generated certificate names. The pin is what clients check, but a correct SAN
 *  lets ordinary tools (curl --cacert, browsers) talk to /healthz too. */
function subjectAltNames(host: string): Array<{ type: 'dns' | 'ip'; value: string }> {
  const names: Array<{ type: 'dns' | 'ip'; value: string }> = [
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' },
  ];
  if (host && host !== '0.0.0.0' && host !== '::' && !names.some((n) => n.value === host)) {
    names.push({ type: /^[0-9.]+$/.test(host) || host.includes(':') ? 'ip' : 'dns', value: host });
  }
  return names;
}

async function createSelfSigned(host: string): Promise<{ certPem: string; keyPem: string }> {
  const crypto = webcrypto;
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
      name: 'CN=orch-relay',
      notBefore: new Date(now - 60 * 60 * 1000),
      notAfter: new Date(now + 10 * 365 * 24 * 60 * 60 * 1000),
      signingAlgorithm: alg,
      keys,
      extensions: [
        new x509.SubjectAlternativeNameExtension(subjectAltNames(host)),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    },
    crypto as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1],
  );
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem') + '\n', keyPem: pemBlock('PRIVATE KEY', pkcs8) };
}

function checkPair(certPem: string, keyPem: string, certFile: string, keyFile: string): void {
  let cert: NodeX509;
  try {
    cert = new NodeX509(certPem);
  } catch (err) {
    throw new CertificateError('cert_invalid', `${certFile} is not a PEM certificate (${(err as Error).message})`);
  }
  let ok: boolean;
  try {
    ok = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (err) {
    throw new CertificateError('key_unreadable', `${keyFile} is not a PEM private key (${(err as Error).message})`);
  }
  if (!ok) throw new CertificateError('key_mismatch', `${keyFile} is not the private key of ${certFile}`);
}

function readFile(file: string, code: 'cert_unreadable' | 'key_unreadable'): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CertificateError(code, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * The certificate and key to serve: the operator's files when given, else the data directory's self-signed pair,
 * created on first use. A generated key file that someone made group- or world-readable is refused: a relay key
 * others can read lets them impersonate the relay to every pinned client.
 *
 * @example const { certPem, keyPem, pin } = await loadOrCreateCertificate({ dataDir: '/var/lib/orch-relay', host: '0.0.0.0' });
 */
export async function loadOrCreateCertificate(opts: {
  dataDir: string;
  host: string;
  certFile?: string;
  keyFile?: string;
}): Promise<RelayCertificate> {
  let created = false;
  let certFile: string;
  let keyFile: string;
  if (opts.certFile !== undefined || opts.keyFile !== undefined) {
    if (opts.certFile === undefined || opts.keyFile === undefined) {
      throw new CertificateError(opts.certFile === undefined ? 'cert_unreadable' : 'key_unreadable', '--cert and --key go together');
    }
    certFile = path.resolve(opts.certFile);
    keyFile = path.resolve(opts.keyFile);
  } else {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    certFile = path.join(opts.dataDir, CERT_FILE_NAME);
    keyFile = path.join(opts.dataDir, KEY_FILE_NAME);
    if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) {
      const pair = await createSelfSigned(opts.host);
      // The key is written with 0600 from its first byte (flag 'wx' + mode), never chmod-ed after the fact.
      const tmpKey = `${keyFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmpKey, pair.keyPem, { mode: 0o600, flag: 'wx' });
      fs.renameSync(tmpKey, keyFile);
      fs.writeFileSync(certFile, pair.certPem, { mode: 0o644 });
      created = true;
    }
    const mode = fs.statSync(keyFile).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new CertificateError('key_permissions', `${keyFile} has mode ${mode.toString(8)}; run: chmod 600 ${keyFile}`);
    }
  }
  const certPem = readFile(certFile, 'cert_unreadable');
  const keyPem = readFile(keyFile, 'key_unreadable');
  checkPair(certPem, keyPem, certFile, keyFile);
  const relayId = spkiSha256(certPem);
  return { certPem, keyPem, certFile, keyFile, pin: `sha256/${relayId.toString('base64')}`, relayId, created };
}
