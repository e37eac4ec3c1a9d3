import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/io/server-process';
import { mailReport, smtpFromEnv, transportOptions } from '../../src/report/mail';

const PY = path.resolve(__dirname, '../../.venv/bin/python');

describe('report mail', () => {
  it('verifies certificates unless SMTP_TLS_INSECURE says otherwise, and requires TLS before a password', () => {
    const base = { SMTP_HOST: 'mail.example', REPORT_TO: 'team@example' };
    const plain = transportOptions(smtpFromEnv({ ...base, SMTP_USER: 'u', SMTP_PASS: 'p' })!);
    expect(plain).toMatchObject({ port: 587, secure: false, requireTLS: true, tls: { rejectUnauthorized: true } });
    const implicit = transportOptions(smtpFromEnv({ ...base, SMTP_SECURE: 'true', SMTP_USER: 'u' })!);
    expect(implicit).toMatchObject({ secure: true, tls: { rejectUnauthorized: true } });
    expect(transportOptions(smtpFromEnv(base)!)).toMatchObject({
      requireTLS: false,
      tls: { rejectUnauthorized: true },
    });
    const relay = transportOptions(smtpFromEnv({ ...base, SMTP_TLS_INSECURE: 'true' })!);
    expect(relay.tls).toEqual({ rejectUnauthorized: false });
  });

  describe('against a real SMTP relay that offers no TLS (Python smtpd)', () => {
    let relay: ChildProcess;
    let port = 0;
    let received = '';
    beforeAll(async () => {
      port = await freePort();
      relay = spawn(PY, ['-W', 'ignore', '-m', 'smtpd', '-n', '-c', 'DebuggingServer', `127.0.0.1:${port}`]);
      relay.stdout!.on('data', (d: Buffer) => (received += d.toString()));
      await new Promise((r) => setTimeout(r, 1500));
    });
    afterAll(() => relay.kill());
    const settings = (extra: Record<string, string>) =>
      smtpFromEnv({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(port), REPORT_TO: 'team@example', ...extra })!;

    it('sends no password over a connection it cannot upgrade to TLS', async () => {
      await expect(
        mailReport(settings({ SMTP_USER: 'reporter', SMTP_PASS: 'hunter2' }), 'weekly churn', '<p>x</p>', []),
      ).rejects.toThrow(/TLS/i);
      expect(received).not.toContain('weekly churn');
    });

    it('mails a report without credentials to a plain local relay', async () => {
      await mailReport(settings({}), 'weekly churn', '<p>bucket A</p>', [{ filename: 'a.csv', content: 'id\n1\n' }]);
      await new Promise((r) => setTimeout(r, 300));
      expect(received).toContain('Subject: weekly churn');
    });
  });
});
