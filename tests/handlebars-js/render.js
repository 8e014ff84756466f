// Renders relance templates with handlebars.js, for tests/handlebars_js.rs.
//
// Input (file given as the first argument): {"jobs": [{"id", "mode",
// "source", "partials": {NAME: SOURCE}, "context", "timezone_field",
// "timezone"}]}. Output (stdout): {ID: {"ok": TEXT} | {"error": MESSAGE}}.
//
// relance's own helpers are written here from docs/language.md alone (not
// from relance's code), so that the comparison also checks the documentation.
'use strict';

const fs = require('fs');
const Handlebars = require('handlebars');

const htmlEscape = Handlebars.Utils.escapeExpression;

// `{{x}}` prints String(x); absent values print nothing.
function text(v) {
  if (v === null || v === undefined) return '';
  return String(v);
}

// Email HTML: handlebars.js's escaping, and an `unsafe:` prefix on a value
// that a browser reads as a script URL.
function escapeHtml(v) {
  const s = text(v);
  const scheme = [...s]
    .filter((c) => !/\s/u.test(c) && !/\p{Cc}/u.test(c))
    .slice(0, 11)
    .join('')
    .toLowerCase();
  const escaped = htmlEscape(s);
  return scheme.startsWith('javascript:') || scheme.startsWith('vbscript:')
    ? 'unsafe:' + escaped
    : escaped;
}

// Webhook bodies: the inside of a JSON string.
function escapeJson(v) {
  let out = '';
  for (const c of text(v)) {
    const code = c.codePointAt(0);
    if (c === '"') out += '\\"';
    else if (c === '\\') out += '\\\\';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (c === '\b') out += '\\b';
    else if (c === '\f') out += '\\f';
    else if (c === '\u2028') out += '\\u2028';
    else if (c === '\u2029') out += '\\u2029';
    else if (code < 0x20) out += '\\u' + code.toString(16).padStart(4, '0');
    else out += c;
  }
  return out;
}

// Link and webhook URLs: every UTF-8 byte but A-Z a-z 0-9 - . _ ~
// percent-encoded (RFC 3986).
function escapeUrl(v) {
  let out = '';
  for (const b of Buffer.from(text(v), 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

// What `{{#if v}}` takes as true.
function ifTrue(v) {
  return !(!v || (Array.isArray(v) && v.length === 0));
}

function isEmpty(v) {
  return v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0);
}

function same(a, b) {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && same(a[k], b[k]));
  }
  // An absent value is null.
  return (a === undefined ? null : a) === (b === undefined ? null : b);
}

function ordered(a, b) {
  const numbers = typeof a === 'number' && typeof b === 'number';
  const texts = typeof a === 'string' && typeof b === 'string';
  return numbers || texts;
}

// A helper answering a value; as a block it picks a branch like `if`.
function predicate(f) {
  return function (...args) {
    const options = args.pop();
    const v = f(args);
    if (options.fn) return ifTrue(v) ? options.fn(this) : options.inverse(this);
    return v;
  };
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July',
  'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

// The wall-clock parts of `ms` in time zone `zone`.
function parts(ms, zone) {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric',
    day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  });
  const p = {};
  for (const { type, value } of f.formatToParts(new Date(ms))) p[type] = Number(value);
  const local = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  p.offset = Math.round((local - Math.floor(ms / 1000) * 1000) / 60000);
  p.weekday = new Date(Date.UTC(p.year, p.month - 1, p.day)).getUTCDay();
  p.yday = Math.round((Date.UTC(p.year, p.month - 1, p.day) - Date.UTC(p.year, 0, 1)) / 86400000) + 1;
  return p;
}

const pad = (n, w, c = '0') => String(n).padStart(w, c);

function strftime(format, p) {
  return format.replace(/%(.)/gsu, (_, d) => {
    switch (d) {
      case 'Y': return String(p.year);
      case 'y': return pad(p.year % 100, 2);
      case 'm': return pad(p.month, 2);
      case 'd': return pad(p.day, 2);
      case 'e': return pad(p.day, 2, ' ');
      case 'H': return pad(p.hour, 2);
      case 'I': return pad(((p.hour + 11) % 12) + 1, 2);
      case 'M': return pad(p.minute, 2);
      case 'S': return pad(p.second, 2);
      case 'p': return p.hour < 12 ? 'AM' : 'PM';
      case 'P': return p.hour < 12 ? 'am' : 'pm';
      case 'B': return MONTHS[p.month - 1];
      case 'b': return MONTHS[p.month - 1].slice(0, 3);
      case 'A': return DAYS[p.weekday];
      case 'a': return DAYS[p.weekday].slice(0, 3);
      case 'j': return pad(p.yday, 3);
      case 'F': return `${p.year}-${pad(p.month, 2)}-${pad(p.day, 2)}`;
      case 'T': return `${pad(p.hour, 2)}:${pad(p.minute, 2)}:${pad(p.second, 2)}`;
      case 'R': return `${pad(p.hour, 2)}:${pad(p.minute, 2)}`;
      case 'z': {
        const o = Math.abs(p.offset);
        return (p.offset < 0 ? '-' : '+') + pad(Math.floor(o / 60), 2) + pad(o % 60, 2);
      }
      case '%': return '%';
      default: throw new Error(`this harness does not know %${d}`);
    }
  });
}

function validZone(z) {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: z });
    return true;
  } catch (e) {
    return false;
  }
}

function registerHelpers(hb, job) {
  const arg = (a, i) => (a.length > i ? a[i] : undefined);
  hb.registerHelper('default', (v, fallback) =>
    isEmpty(v) ? (typeof fallback === 'object' && fallback && fallback.hash ? undefined : fallback) : v);
  hb.registerHelper('upper', (v) => text(v).toUpperCase());
  hb.registerHelper('lower', (v) => text(v).toLowerCase());
  hb.registerHelper('capitalize', (v) => {
    const s = [...text(v)];
    return s.length ? s[0].toUpperCase() + s.slice(1).join('') : '';
  });
  hb.registerHelper('date', function (...args) {
    const options = args.pop();
    const v = arg(args, 0);
    const format = args.length > 1 && args[1] !== null && args[1] !== undefined ? text(args[1]) : '%Y-%m-%d';
    const root = options.data.root;
    let zone = job.timezone;
    if (job.timezone_field && typeof root[job.timezone_field] === 'string' && validZone(root[job.timezone_field])) {
      zone = root[job.timezone_field];
    }
    if (v === null || v === undefined || v === '') return '';
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) return '';
      return strftime(format, parts(v * 1000, zone));
    }
    if (typeof v !== 'string') return v;
    if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
      // A date: midnight, no time zone.
      return strftime(format, parts(Date.parse(v + 'T00:00:00Z'), 'UTC'));
    }
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(v)) {
      return strftime(format, parts(Date.parse(v), zone));
    }
    return v;
  });
  hb.registerHelper('number', function (...args) {
    const options = args.pop();
    const v = arg(args, 0);
    let n = NaN;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) n = parseFloat(v);
    if (!Number.isFinite(n)) return text(v);
    const d = arg(args, 1);
    const sep = 'sep' in options.hash ? text(options.hash.sep) : '';
    const point = 'point' in options.hash ? text(options.hash.point) : '.';
    let s;
    if (Number.isInteger(d) && d >= 0) {
      // Half away from zero on the exact value: toFixed of the magnitude.
      const digits = Math.abs(n).toFixed(Math.min(d, 10));
      s = (n < 0 && /[1-9]/.test(digits) ? '-' : '') + digits;
    } else {
      s = String(n);
    }
    const sign = s.startsWith('-') ? '-' : '';
    const [int, frac] = s.replace('-', '').split('.');
    let grouped = '';
    for (let i = 0; i < int.length; i++) {
      if (i > 0 && (int.length - i) % 3 === 0) grouped += sep;
      grouped += int[i];
    }
    return sign + grouped + (frac === undefined ? '' : point + frac);
  });
  hb.registerHelper('eq', predicate((a) => same(arg(a, 0), arg(a, 1))));
  hb.registerHelper('ne', predicate((a) => !same(arg(a, 0), arg(a, 1))));
  hb.registerHelper('gt', predicate((a) => ordered(a[0], a[1]) && a[0] > a[1]));
  hb.registerHelper('gte', predicate((a) => ordered(a[0], a[1]) && a[0] >= a[1]));
  hb.registerHelper('lt', predicate((a) => ordered(a[0], a[1]) && a[0] < a[1]));
  hb.registerHelper('lte', predicate((a) => ordered(a[0], a[1]) && a[0] <= a[1]));
  hb.registerHelper('and', predicate((a) => a.every(ifTrue)));
  hb.registerHelper('or', predicate((a) => a.some(ifTrue)));
  hb.registerHelper('not', predicate((a) => !ifTrue(arg(a, 0))));
  hb.registerHelper('len', predicate((a) => {
    const v = arg(a, 0);
    if (Array.isArray(v)) return v.length;
    if (typeof v === 'string') return [...v].length;
    if (v && typeof v === 'object') return Object.keys(v).length;
    return 0;
  }));
  hb.registerHelper('raw', (options) => options.fn());
}

function render(job) {
  const hb = Handlebars.create();
  registerHelpers(hb, job);
  for (const [name, source] of Object.entries(job.partials)) hb.registerPartial(name, source);
  // The escaping of the body's mode; the container captures it on the
  // template's first call, below.
  const escapes = { html: escapeHtml, json: escapeJson, url: escapeUrl, plain: text };
  Handlebars.Utils.escapeExpression = escapes[job.mode];
  try {
    const template = hb.compile(job.source);
    return { ok: template(job.context) };
  } finally {
    Handlebars.Utils.escapeExpression = htmlEscape;
  }
}

const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const job of input.jobs) {
  try {
    out[job.id] = render(job);
  } catch (e) {
    out[job.id] = { error: String(e && e.message ? e.message : e) };
  }
}
process.stdout.write(JSON.stringify(out));
