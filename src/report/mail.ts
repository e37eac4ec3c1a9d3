/** Mailing reports through SMTP (nodemailer), configured from the environment. */
import nodemailer from 'nodemailer';

export interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  user?: string;
  pass?: string;
  from: string;
  to: string[];
}

/**
 * SMTP settings from SMTP_HOST, SMTP_PORT, SMTP_SECURE, SMTP_USER, SMTP_PASS, REPORT_FROM, REPORT_TO;
 * undefined when SMTP_HOST is unset.
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
  attachments: { filename: string; content: string }[],
): Promise<string> {
  const transport = nodemailer.createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure,
    auth: s.user ? { user: s.user, pass: s.pass ?? '' } : undefined,
    tls: { rejectUnauthorized: s.secure },
  });
  try {
    const info = await transport.sendMail({ from: s.from, to: s.to, subject, html, attachments });
    return info.messageId;
  } finally {
    transport.close();
  }
}
