// The "try it" forms of /api/v1/docs: plain JavaScript, no library, nothing loaded from elsewhere.
(function () {
  'use strict';
  var KEY = 'motcua.docs.token';

  function token() { return sessionStorage.getItem(KEY) || ''; }

  function showWho() {
    var who = document.getElementById('who');
    var t = token();
    if (!t) { who.textContent = '(chưa đăng nhập / not logged in)'; return; }
    try {
      var c = JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      who.textContent = c.sub + ' — ' + (c.roles || []).join(', ') + ' @ ' + c.agency;
    } catch (e) { who.textContent = 'token'; }
  }

  function show(out, status, type, text) {
    var body = text;
    if (type && type.indexOf('json') >= 0) {
      try { body = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* keep the text */ }
    }
    out.textContent = 'HTTP ' + status + '  ' + (type || '') + '\n\n' + body;
    out.className = 'out ' + (status < 300 ? 'ok' : 'err');
  }

  document.getElementById('login').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var f = ev.target;
    fetch('/api/v1/auth/token', {
      method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username: f.username.value, password: f.password.value })
    }).then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
      .then(function (res) {
        if (res[0] === 200) { sessionStorage.setItem(KEY, res[1].access_token); f.password.value = ''; }
        else { alert(res[1].detail || ('HTTP ' + res[0])); }
        showWho();
      });
  });
  document.getElementById('logout').addEventListener('click', function () {
    sessionStorage.removeItem(KEY); showWho();
  });

  Array.prototype.forEach.call(document.querySelectorAll('form.try'), function (form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var out = form.querySelector('.out');
      var path = form.dataset.path;
      var query = new URLSearchParams();
      var headers = { Accept: 'application/json' };
      var body;
      Array.prototype.forEach.call(form.querySelectorAll('input[data-in]'), function (inp) {
        var where = inp.dataset.in;
        if (where === 'file' || !inp.value) return;
        if (where === 'path') path = path.replace('{' + inp.name + '}', encodeURIComponent(inp.value));
        else if (where === 'query') inp.value.split(',').forEach(function (v) { query.append(inp.name, v.trim()); });
        else if (where === 'header') headers[inp.name] = inp.value;
      });
      if (form.dataset.multipart) {
        body = new FormData();
        Array.prototype.forEach.call(form.querySelectorAll('input[type=file]'), function (inp) {
          Array.prototype.forEach.call(inp.files, function (file) { body.append(inp.name, file, file.name); });
        });
      } else if (form.elements.namedItem('_body')) {
        headers['Content-Type'] = 'application/json';
        body = form.elements.namedItem('_body').value;
      }
      if (token()) headers.Authorization = 'Bearer ' + token();
      var qs = query.toString();
      out.textContent = '…';
      fetch(path + (qs ? '?' + qs : ''), { method: form.dataset.method, headers: headers, body: body })
        .then(function (r) {
          return r.text().then(function (t) { show(out, r.status, r.headers.get('Content-Type'), t); });
        })
        .catch(function (e) { out.textContent = String(e); });
    });
  });
  showWho();
})();
