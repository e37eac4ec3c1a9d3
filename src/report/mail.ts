/**
 * Mailing reports through SMTP (nodemailer), configured from the environment. Certificates are always
 * verified, and credentials only travel over TLS (implicit TLS with SMTP_SECURE=true, else a required
 * STARTTLS): a relay that offers no TLS gets no password. A test relay with a self-signed certificate
 * is the one exception, by an explicit, logged SMTP_TLS_INSECURE=true.
 */
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';

export interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  /** Skip certificate verification (a test relay only; logged on every send). */
  insecureTls?: boolean;
  user?: string;
  pass?: string;
  from: string;
  to: string[];
}

/**
 * SMTP settings from SMTP_HOST, SMTP_PORT, SMTP_SECURE, SMTP_TLS_INSECURE, SMTP_USER, SMTP_PASS,
 * REPORT_FROM, REPORT_TO; undefined when SMTP_HOST is unset.
 */
export function smtpFromEnv(env: NodeJS.ProcessEnv = process.env): SmtpSettings | undefined {
  if (!env.SMTP_HOST) return undefined;
  const to = (env.REPORT_TO ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (to.length === 0) throw new Error('SMTP_HOST is set but REPORT_TO (comma-separated recipients) is not');
  return {
    host: env.SMTP_HOST,
    port: Number(env.SMTP_PORT ?? 587),
    secure: env.SMTP_SECURE === 'true',
    insecureTls: env.SMTP_TLS_INSECURE === 'true',
    user: env.SMTP_USER,
    pass: env.SMTP_PASS,
    from: env.REPORT_FROM ?? 'convo-mlops@localhost',
    to,
  };
}

export async function mailReport(
  s: SmtpSettings,
  subject: string,
  html: string,
  /** Inline `content`, or a file `path` streamed from disk. */
  attachments: ({ filename: string; content: string } | { filename: string; path: string })[],
): Promise<string> {
  if (s.insecureTls)
    console.warn(`mail: SMTP_TLS_INSECURE=true: the certificate of ${s.host} is NOT verified (test relays only)`);
  const transport = nodemailer.createTransport(transportOptions(s));
  try {
    const info = await transport.sendMail({ from: s.from, to: s.to, subject, html, attachments });
    return info.messageId;
  } finally {
    transport.close();
  }
}

/** What nodemailer is told: verified certificates, and STARTTLS required whenever a password is sent. */
export function transportOptions(s: SmtpSettings): SMTPTransport.Options {
  return {
    host: s.host,
    port: s.port,
    secure: s.secure,
    requireTLS: !s.secure && s.user !== undefined,
    auth: s.user ? { user: s.user, pass: s.pass ?? '' } : undefined,
    tls: { rejectUnauthorized: !s.insecureTls },
  };
}
