// The reference page: sign up or in, wallet and entitlements, buy (emulator as the Pay SDK), verify,
// greetings and postcards, histories. Everything the API answers is shown with textContent (never innerHTML).
import {ApiError, createClient, idempotencyKey} from './api.js';

const $ = (id) => document.getElementById(id);
const api = createClient({
  onSessionEnded: (reason) => { showSignedOut(); setError(`Signed out (${reason || 'session ended'}).`); },
  onRequest: ({method, path, status, reason}) => {
    const li = document.createElement('li');
    li.textContent = `${method} ${path} → ${status}${reason ? ' ' + reason : ''}`;
    li.dataset.status = String(status);
    $('log').append(li);
    $('log').scrollTop = $('log').scrollHeight;
  },
});
let config = {emulator: null};
let products = [];

function setError(text) { $('error').textContent = text || ''; }
function status(id, text, ok = true) { $(id).textContent = text; $(id).className = ok ? 'ok' : 'err'; }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Run a UI action: one at a time per button, errors shown in the shared shape's words.
function action(button, fn) {
  button.addEventListener('click', async (event) => {
    event.preventDefault();
    button.disabled = true;
    setError('');
    try { await fn(event); } catch (e) {
      setError(e instanceof ApiError ? `${e.message} (${e.status} ${e.reason})` : String(e));
    } finally { button.disabled = false; }
  });
}

function showSignedOut() {
  for (const id of ['wallet', 'shop', 'create', 'histories']) $(id).hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
}

async function signedIn(answer) {
  $('who').textContent = `Signed in as ${answer.userId}`;
  $('signout').hidden = false;
  for (const id of ['wallet', 'shop', 'create', 'histories']) $(id).hidden = false;
  await Promise.all([loadCustomer(), loadProducts(), loadHistories()]);
}

async function loadCustomer() {
  const {data} = await api.call('GET', '/api/customer');
  $('balance').textContent = String(data.balance);
  const list = $('entitlements');
  list.replaceChildren();
  for (const [name, e] of Object.entries(data.entitlements)) {
    const li = document.createElement('li');
    li.dataset.entitlement = name;
    li.dataset.active = String(e.active);
    li.textContent = `${name}: ${e.active ? 'active' : 'inactive'}` +
      (e.expiresAt ? ` until ${e.expiresAt.slice(0, 10)}` : '') + (e.willRenew ? ', renews' : '');
    list.append(li);
  }
}

async function loadProducts() {
  const {data} = await api.call('GET', '/api/products', {auth: false});
  products = data.products;
  $('emulator-note').textContent = config.emulator
    ? `Payments go to the RuStore emulator (app ${config.emulator.appId}) in place of the Pay SDK.`
    : 'No RuStore emulator runs in this process: buying needs the Pay SDK in a real app.';
  const list = $('products');
  list.replaceChildren();
  for (const p of products) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Buy';
    button.dataset.product = p.productId;
    button.disabled = !config.emulator;
    action(button, () => buy(p));
    li.append(button, ` ${p.title} (${p.priceLabel})`);
    list.append(li);
  }
}

// The purchase sequence a real app runs: server order -> Pay SDK purchase -> server verify.
async function buy(product) {
  const subscription = product.type === 'subscription';
  status('purchase-status', `Buying ${product.productId}…`);
  // 1. The server creates the order: it binds the purchase to this account.
  const {data: order} = await api.call('POST', subscription ? '/api/subscriptions/create' : '/api/payments/orders',
                                       {body: {productId: product.productId}});
  // 2. The user pays. In an Android app this is the Pay SDK's purchase(ProductPurchaseParams(productId,
  //    orderId, developerPayload, appUserId)); here the emulator's control API plays that part.
  const {data: sdk} = await api.call('POST', `/demo/emulator/${subscription ? 'subscriptions' : 'purchases'}`, {
    auth: false,
    body: {productId: order.productId, orderId: order.orderId, developerPayload: order.developerPayload,
           appUserId: order.appUserId},
  });
  // 3. The app sends the SDK result to the server, which asks RuStore and credits exactly once.
  const body = subscription
    ? {purchaseId: sdk.purchaseId, productId: sdk.productId, orderId: sdk.orderId, sandbox: sdk.sandbox}
    : {invoiceId: sdk.invoiceId, purchaseId: sdk.purchaseId, productId: sdk.productId, orderId: sdk.orderId,
       sandbox: sdk.sandbox};
  const path = subscription ? '/api/subscriptions/verify' : '/api/payments/verify';
  let answer = await api.call('POST', path, {body});
  // 202 pending: RuStore has not settled the payment yet. Ask again with backoff; the webhook or a job
  // credits it anyway, so after giving up the next GET /api/customer shows the result.
  for (let wait = 500; answer.status === 202 && wait <= 8000; wait *= 2) {
    status('purchase-status', 'Payment pending at RuStore; checking again…');
    await sleep(wait);
    answer = await api.call('POST', path, {body});
  }
  const a = answer.data;
  if (answer.status === 202) {
    status('purchase-status', 'Still pending: the server finishes it when RuStore settles; reload later.', false);
  } else {
    const granted = a.pointsGranted !== undefined ? `, +${a.pointsGranted} points` : '';
    const by = a.creditedBy ? ` (credited by ${a.creditedBy})` : '';
    status('purchase-status', `${product.productId}: ${a.status}${granted}${by}; balance ${a.balance}.`);
  }
  await Promise.all([loadCustomer(), loadHistories()]);
}

async function generate(kind) {
  status('generation-status', kind === 'card' ? 'Drawing a postcard…' : 'Writing a greeting…');
  // One key per user action: a retry of the same action (network error, token refresh) is charged once.
  const key = idempotencyKey();
  const {data} = await api.call('POST', '/api/generation/request', {
    headers: {'Idempotency-Key': key},
    body: {kind, occasion: $('occasion').value, recipientName: $('recipient').value || null, language: 'en'},
  });
  $('text').hidden = false;
  $('text').textContent = data.text;
  const img = $('postcard');
  if (data.imageUrl) {
    // A signed URL loads like any image; the plain imageUrl needs the bearer token, so fetch it as a blob.
    if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
    img.src = data.signedImageUrl || await api.blobUrl(data.imageUrl);
    img.hidden = false;
  } else {
    img.hidden = true;
  }
  status('generation-status', `${kind} for ${data.cost} points; balance ${data.balance}.`);
  $('balance').textContent = String(data.balance);
  await loadHistories();
}

function table(id, headers, rows) {
  const t = $(id);
  t.replaceChildren();
  const head = document.createElement('tr');
  for (const h of headers) { const th = document.createElement('th'); th.textContent = h; head.append(th); }
  t.append(head);
  for (const row of rows) {
    const tr = document.createElement('tr');
    for (const cell of row) { const td = document.createElement('td'); td.textContent = String(cell ?? ''); tr.append(td); }
    t.append(tr);
  }
}

async function loadHistories() {
  const [points, payments, generations] = await Promise.all([
    api.call('GET', '/api/points/history?limit=10'),
    api.call('GET', '/api/payments/history?limit=10'),
    api.call('GET', '/api/generation/history?limit=10'),
  ]);
  table('points-history', ['When', 'Type', 'Amount', 'Balance'],
        points.data.items.map((e) => [e.createdAt.slice(11, 19), e.type, e.amount, e.balanceAfter]));
  table('payments-history', ['Invoice', 'Product', 'Status'],
        payments.data.items.map((p) => [p.invoiceId, p.productId, p.status]));
  table('generation-history', ['Kind', 'Occasion', 'Status', 'Cost'],
        generations.data.items.map((g) => [g.kind, g.occasion, g.status, g.cost]));
}

async function start() {
  config = (await api.call('GET', '/demo/config.json', {auth: false})).data;
  const form = $('auth-form');
  for (const id of ['signup', 'signin']) {
    action($(id), async () => {
      if (!form.reportValidity()) return;
      const answer = await (id === 'signup' ? api.register : api.login)($('email').value, $('password').value);
      await signedIn(answer);
    });
  }
  action($('signout'), async () => { await api.logout(); });
  action($('reload'), async () => { await Promise.all([loadCustomer(), loadHistories()]); });
  action($('greeting'), () => generate('greeting'));
  action($('card'), () => generate('card'));
  document.body.dataset.ready = 'true';
}

start().catch((e) => setError(String(e)));
