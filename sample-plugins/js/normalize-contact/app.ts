// Normalises contact records (JSON objects):
//
// - `email`: trimmed and lower-cased; required, and it must look like `local@domain.tld`;
// - `phone` (optional): digits only, in E.164 form `+<country><number>`. A number written with
//   `+` or `00` keeps its country code; any other gets config `default_country_code` (default
//   `1`) after its trunk `0` is dropped. 8 to 15 digits in all;
// - `name`: whitespace collapsed, split into `first_name` (the first word) and `last_name` (the
//   rest); or, when there is no `name`, built from `first_name` and `last_name`. Required.
//
// Other fields pass through. Records that cannot be normalised make the batch fail with
// `InvalidInput`, listing every offending record and every reason.

import { transformer, json, config, log, InvalidConfig, InvalidInput, type Record, type RecordIssue } from '@plugboard/sdk';

type Contact = { [field: string]: unknown };

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function countryCode(): string {
  const configured = (config.get('default_country_code') ?? '1').trim().replace(/^\+/, '');
  if (!/^\d{1,3}$/.test(configured)) {
    throw new InvalidConfig(`default_country_code \`${configured}\` is not 1 to 3 digits`);
  }
  return configured;
}

function words(value: unknown): string[] {
  return typeof value === 'string' ? value.trim().split(/\s+/).filter((word) => word.length > 0) : [];
}

function normalizeEmail(contact: Contact, reasons: string[]): void {
  if (typeof contact.email !== 'string' || contact.email.trim() === '') {
    reasons.push('email is missing');
    return;
  }
  const email = contact.email.trim().toLowerCase();
  if (!EMAIL.test(email)) reasons.push(`email \`${email}\` is not a valid address`);
  contact.email = email;
}

function normalizePhone(contact: Contact, defaultCountry: string, reasons: string[]): void {
  if (contact.phone === undefined || contact.phone === null || contact.phone === '') return;
  const written = String(contact.phone).trim();
  let digits = written.replace(/\D/g, '');
  if (written.startsWith('+')) {
    // Already international.
  } else if (digits.startsWith('00')) {
    digits = digits.slice(2);
  } else {
    digits = defaultCountry + digits.replace(/^0/, '');
  }
  if (digits.length < 8 || digits.length > 15) {
    reasons.push(`phone \`${written}\` has ${digits.length} digits with its country code, expected 8 to 15`);
    return;
  }
  contact.phone = `+${digits}`;
}

function normalizeName(contact: Contact, reasons: string[]): void {
  const name = words(contact.name);
  const parts = name.length > 0 ? name : [...words(contact.first_name), ...words(contact.last_name)];
  if (parts.length === 0) {
    reasons.push('name is missing');
    return;
  }
  if (name.length > 0) {
    contact.first_name = parts[0];
    contact.last_name = parts.slice(1).join(' ');
  } else {
    contact.first_name = words(contact.first_name).join(' ');
    contact.last_name = words(contact.last_name).join(' ');
  }
  contact.name = parts.join(' ');
}

export const transform = transformer((records: Record[]): Record[] => {
  const defaultCountry = countryCode();
  const values = json.parseBatch(records);
  const issues: RecordIssue[] = [];
  const output = records.map((record, index) => {
    const value = values[index];
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      issues.push({ index, reasons: ['value is not a JSON object'] });
      return record;
    }
    const contact = value as Contact;
    const reasons: string[] = [];
    normalizeEmail(contact, reasons);
    normalizePhone(contact, defaultCountry, reasons);
    normalizeName(contact, reasons);
    if (reasons.length > 0) issues.push({ index, reasons });
    return json.withValue(record, contact);
  });
  if (issues.length > 0) throw new InvalidInput(issues);
  log.info(`normalised ${output.length} contacts`);
  return output;
});
