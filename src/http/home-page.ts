import type { Request, Response } from 'express';

/** The demo page of `npm start`: log in, show /auth/user, log out, all through the gateway. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bff-gateway</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #1d2330; }
  button, a.button { font: inherit; padding: .5rem 1rem; border-radius: .4rem; border: 1px solid #3451b2; background: #3451b2; color: #fff; cursor: pointer; text-decoration: none; }
  pre { background: #f3f4f7; padding: 1rem; border-radius: .4rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>bff-gateway</h1>
<p id="status">Checking your session&hellip;</p>
<pre id="user" hidden></pre>
<p>
  <a class="button" id="login" href="/auth/login?returnTo=%2F" hidden>Log in</a>
  <button id="logout" type="button" hidden>Log out</button>
</p>
<script>
  const status = document.getElementById('status');
  const user = document.getElementById('user');
  const login = document.getElementById('login');
  const logout = document.getElementById('logout');
  async function show() {
    const response = await fetch('/auth/user', { credentials: 'same-origin' });
    if (response.ok) {
      const profile = await response.json();
      status.textContent = 'Logged in as ' + (profile.name || profile.sub) + '.';
      user.textContent = JSON.stringify(profile, null, 2);
      user.hidden = false; logout.hidden = false; login.hidden = true;
    } else {
      status.textContent = 'You are not logged in.';
      user.hidden = true; logout.hidden = true; login.hidden = false;
    }
  }
  logout.addEventListener('click', async () => {
    const response = await fetch('/auth/logout', { method: 'POST', headers: { 'X-CSRF': '1' }, credentials: 'same-origin' });
    const body = await response.json();
    window.location.assign(body.logoutUrl || '/');
  });
  show();
</script>
</body>
</html>`;

export function homePage(_req: Request, res: Response): void {
  res.set('Cache-Control', 'no-store').type('html').send(PAGE);
}
