// A small program against the generated types: register, login, order, verify, customer.
// `npm run generate` writes src/schema.d.ts from a running server; `npm run check` type-checks this file.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type TokenPair = components["schemas"]["TokenPair"];
type ApiErrorBody = components["schemas"]["Error"];

/** What the Pay SDK's purchase() gave the app (ProductPurchaseResult), reduced to what the server needs. */
export interface PaySdkResult {
  invoiceId: string;
  purchaseId: string;
  productId: string;
  orderId: string | null;
  sandbox: boolean;
}

export class BackendError extends Error {
  constructor(readonly status: number, readonly body: ApiErrorBody | undefined) {
    super(body?.error ?? `HTTP ${status}`);
  }
  get reason(): string | undefined {
    return this.body?.reason;
  }
}

export function backend(baseUrl: string) {
  const client = createClient<paths>({ baseUrl });
  let tokens: TokenPair | null = null; // in memory; see docs/web.md for why not localStorage

  client.use({
    onRequest({ request }) {
      if (tokens) request.headers.set("Authorization", `Bearer ${tokens.accessToken}`);
      return request;
    },
  });

  async function refresh(): Promise<void> {
    if (!tokens) throw new BackendError(401, undefined);
    const { data, error, response } = await client.POST("/api/auth/refresh", {
      body: { refreshToken: tokens.refreshToken },
    });
    if (!data) {
      tokens = null; // refresh_token_reused or session_ended: the session is over, sign in again
      throw new BackendError(response.status, error);
    }
    tokens = data; // rotation: the old refresh token is dead from now on
  }

  /** Run a call; on 401 invalid_token refresh once (rotating) and run it again. */
  async function authed<T extends { response: Response; error?: unknown }>(call: () => Promise<T>): Promise<T> {
    const first = await call();
    const reason = (first.error as ApiErrorBody | undefined)?.reason;
    if (first.response.status === 401 && reason === "invalid_token") {
      await refresh();
      return call();
    }
    return first;
  }

  return {
    async register(email: string, password: string): Promise<TokenPair> {
      const { data, error, response } = await client.POST("/api/auth/register", { body: { email, password } });
      if (!data) throw new BackendError(response.status, error);
      tokens = data;
      return data;
    },

    async login(email: string, password: string): Promise<TokenPair> {
      const { data, error, response } = await client.POST("/api/auth/login", { body: { email, password } });
      if (!data) throw new BackendError(response.status, error);
      tokens = data;
      return data;
    },

    /** Step 1 of a purchase: the order whose ids go into the Pay SDK's ProductPurchaseParams. */
    async createOrder(productId: string): Promise<components["schemas"]["OrderResult"]> {
      const { data, error, response } = await authed(() =>
        client.POST("/api/payments/orders", { body: { productId } }),
      );
      if (!data) throw new BackendError(response.status, error);
      return data;
    },

    /** Step 3: the server asks RuStore and credits once. `pending` (202): ask again later or read the customer. */
    async verify(sdk: PaySdkResult): Promise<components["schemas"]["VerifyResult"]> {
      const { data, error, response } = await authed(() =>
        client.POST("/api/payments/verify", {
          body: {
            invoiceId: sdk.invoiceId,
            purchaseId: sdk.purchaseId,
            productId: sdk.productId,
            orderId: sdk.orderId,
            sandbox: sdk.sandbox,
          },
        }),
      );
      if (!data) throw new BackendError(response.status, error);
      return data;
    },

    async customer(): Promise<components["schemas"]["Customer"]> {
      const { data, error, response } = await authed(() => client.GET("/api/customer"));
      if (!data) throw new BackendError(response.status, error);
      return data;
    },
  };
}

/** The whole sequence, as an app runs it around the Pay SDK call. */
export async function buyPoints(
  baseUrl: string,
  email: string,
  password: string,
  paySdkPurchase: (order: components["schemas"]["OrderResult"]) => Promise<PaySdkResult>,
): Promise<number> {
  const api = backend(baseUrl);
  await api.register(email, password).catch(async (e: unknown) => {
    if (e instanceof BackendError && e.reason === "email_taken") return api.login(email, password);
    throw e;
  });
  const order = await api.createOrder("points_100");
  const result = await api.verify(await paySdkPurchase(order));
  if (result.status !== "pending" && result.balance !== undefined) return result.balance;
  // pending: RuStore has not settled yet; the webhook or a job credits it, and the snapshot shows it then.
  const customer = await api.customer();
  return customer.balance;
}
