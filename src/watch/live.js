// relance watch: live reload and the error overlay.
//
// Served at /__relance/live.js and added to every HTML page of the preview
// server. It listens to /__relance/events (server-sent events); each build
// sends its status: the overlay shows the build's errors (the page beneath
// keeps the last good previews) and, when the previews changed, the page is
// fetched again and its body swapped in place, keeping the scroll position
// (no reload: nothing flashes and the page's state outside the body stays).
(function () {
  'use strict';
  if (window.__relanceLive) return;
  var me = document.currentScript;
  var live = (window.__relanceLive = {
    // The site generation this page shows (set by the server).
    site: me ? Number(me.getAttribute('data-relance-site')) : -1,
    status: null,
    swaps: 0,
    connected: false,
  });
  var ID = '__relance_overlay';
  var STYLE =
    '#__relance_overlay{all:initial;position:fixed;z-index:2147483647;left:0;right:0;bottom:0;' +
    'max-height:55vh;overflow:auto;background:#18181b;color:#f4f4f5;opacity:1;' +
    'font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;box-shadow:0 -4px 24px rgba(0,0,0,.35)}' +
    '#__relance_overlay[hidden]{display:none}' +
    '#__relance_overlay *{all:revert;font:inherit;color:inherit;box-sizing:border-box}' +
    '#__relance_overlay .rl-head{display:flex;gap:12px;align-items:center;padding:8px 14px;' +
    'background:#7f1d1d;position:sticky;top:0}' +
    '#__relance_overlay[data-state=warnings] .rl-head{background:#78350f}' +
    '#__relance_overlay[data-state=offline] .rl-head{background:#3f3f46}' +
    '#__relance_overlay .rl-head strong{font-weight:700}' +
    '#__relance_overlay .rl-head span{flex:1;opacity:.85}' +
    '#__relance_overlay button{all:revert;font:12px system-ui,sans-serif;cursor:pointer}' +
    '#__relance_overlay .rl-diag{padding:10px 14px;border-top:1px solid #3f3f46}' +
    '#__relance_overlay .rl-title{font-weight:700}' +
    '#__relance_overlay .rl-error .rl-title{color:#fca5a5}' +
    '#__relance_overlay .rl-warning .rl-title{color:#fcd34d}' +
    '#__relance_overlay .rl-loc{display:block;color:#93c5fd;text-decoration:underline;cursor:pointer}' +
    '#__relance_overlay pre{margin:6px 0 0;white-space:pre-wrap;word-break:break-word;' +
    'font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#e4e4e7}' +
    '#__relance_overlay.rl-min .rl-diag{display:none}';

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function overlay() {
    var o = document.getElementById(ID);
    if (!o) {
      // Outside <body>, so that swapping the body keeps it.
      var style = el('style');
      style.id = ID + '_style';
      style.textContent = STYLE;
      document.documentElement.appendChild(style);
      o = el('div');
      o.id = ID;
      o.hidden = true;
      o.setAttribute('role', 'alert');
      document.documentElement.appendChild(o);
    }
    return o;
  }

  var EDITOR = 'vscode://file/{path}:{line}:{column}';

  // The editor link of a diagnostic: the status's `editor` template (from
  // `relance watch --editor`), or VS Code's. Only URLs with a scheme that
  // runs no code in the page.
  function editorLink(st, d) {
    if (!d.abs_path) return null;
    var t = typeof st.editor === 'string' ? st.editor : EDITOR;
    if (!/^[a-z][a-z0-9+.-]*:/i.test(t) || /^(javascript|data|vbscript):/i.test(t)) t = EDITOR;
    var path = encodeURI(d.abs_path).replace(/[?#]/g, encodeURIComponent);
    // `vscode://file/` + `/home/me/x`: one slash between them.
    if (t === EDITOR && path.charAt(0) === '/') t = 'vscode://file{path}:{line}:{column}';
    return t
      .split('{path}')
      .join(path)
      .split('{line}')
      .join(String(d.line || 1))
      .split('{column}')
      .join(String(d.column || 1));
  }

  function plural(n, word) {
    return n + ' ' + word + (n === 1 ? '' : 's');
  }

  // Shows a build's status: nothing when clean, the diagnostics otherwise.
  function show(st) {
    var o = overlay();
    var errors = st.errors || 0;
    var warnings = st.warnings || 0;
    o.textContent = '';
    if (!errors && !warnings && !st.message) {
      o.hidden = true;
      o.setAttribute('data-state', 'ok');
      return;
    }
    o.hidden = false;
    o.setAttribute('data-state', errors ? 'errors' : 'warnings');
    var head = el('div', 'rl-head');
    head.appendChild(el('strong', null, 'relance: ' + plural(errors, 'error') + ', ' + plural(warnings, 'warning')));
    head.appendChild(
      el('span', null, errors ? 'the previews below are from the last build without errors' : 'the previews are up to date')
    );
    var toggle = el('button', null, o.classList.contains('rl-min') ? 'show' : 'hide');
    toggle.type = 'button';
    toggle.onclick = function () {
      o.classList.toggle('rl-min');
      toggle.textContent = o.classList.contains('rl-min') ? 'show' : 'hide';
    };
    head.appendChild(toggle);
    o.appendChild(head);
    if (st.message) {
      var m = el('div', 'rl-diag rl-error');
      m.appendChild(el('div', 'rl-title', 'error: ' + st.message));
      o.appendChild(m);
    }
    var seen = {};
    (st.diagnostics || []).forEach(function (d) {
      // Once each, even if a status lists one twice.
      var key = [d.code, d.message, d.file, d.line, d.column].join('\u0000');
      if (seen[key]) return;
      seen[key] = true;
      var box = el('div', 'rl-diag rl-' + d.severity);
      box.setAttribute('data-code', d.code);
      if (d.file) {
        box.setAttribute('data-file', d.file);
        box.setAttribute('data-line', d.line);
      }
      box.appendChild(el('div', 'rl-title', d.severity + '[' + d.code + ']: ' + d.message));
      if (d.path) {
        var loc = el('a', 'rl-loc', d.path + ':' + d.line + ':' + d.column);
        var href = editorLink(st, d);
        if (href) {
          loc.href = href;
          loc.title = 'open in the editor';
        }
        box.appendChild(loc);
      }
      if (d.rendered) box.appendChild(el('pre', null, d.rendered));
      o.appendChild(box);
    });
  }

  function offline() {
    var o = overlay();
    if (o.getAttribute('data-state') === 'errors') return;
    o.textContent = '';
    o.hidden = false;
    o.setAttribute('data-state', 'offline');
    var head = el('div', 'rl-head');
    head.appendChild(el('strong', null, 'relance watch is not running'));
    head.appendChild(el('span', null, 'reconnecting… (start it again with relance watch)'));
    o.appendChild(head);
  }

  // Replaces the page's body (and styles) with those of `html`.
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, 'text/html');
    var x = window.scrollX;
    var y = window.scrollY;
    if (doc.title) document.title = doc.title;
    var sel = 'style:not([id^="' + ID + '"]), link[rel~="stylesheet"]';
    Array.prototype.forEach.call(document.head.querySelectorAll(sel), function (n) {
      n.remove();
    });
    Array.prototype.forEach.call(doc.head.querySelectorAll(sel), function (n) {
      document.head.appendChild(document.importNode(n, true));
    });
    var body = document.importNode(doc.body, true);
    // Parsed scripts never run: make fresh ones (except this script).
    Array.prototype.forEach.call(body.querySelectorAll('script'), function (old) {
      if (old.hasAttribute('data-relance-site')) {
        old.remove();
        return;
      }
      var s = document.createElement('script');
      Array.prototype.forEach.call(old.attributes, function (a) {
        s.setAttribute(a.name, a.value);
      });
      s.async = false;
      s.textContent = old.textContent;
      old.replaceWith(s);
    });
    document.body.replaceWith(body);
    window.scrollTo(x, y);
  }

  var busy = false;
  var again = false;
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(location.href, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        var site = Number(res.headers.get('X-Relance-Site'));
        var html = (res.headers.get('Content-Type') || '').indexOf('text/html') === 0;
        return res.text().then(function (text) {
          if (html) {
            swap(text);
            live.swaps += 1;
          } else {
            location.reload();
          }
          if (!isNaN(site)) live.site = site;
        });
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again || (live.status && live.status.site !== live.site)) {
          again = false;
          if (live.status && live.status.site !== live.site) refresh();
        }
      });
  }

  function connect() {
    if (!window.EventSource) return;
    var es = new EventSource('/__relance/events');
    es.addEventListener('build', function (e) {
      var st;
      try {
        st = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      live.connected = true;
      live.status = st;
      show(st);
      if (typeof st.site === 'number' && st.site !== live.site) refresh();
    });
    es.onerror = function () {
      // The browser reconnects by itself (the server asks for 0.5 s).
      live.connected = false;
      if (es.readyState !== EventSource.OPEN) offline();
    };
  }

  connect();
})();
