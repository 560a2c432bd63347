// Mistakes the generated types must catch: each line below has to be a type error, or `tsc` fails on the
// unused @ts-expect-error. Together with example.ts this shows the document is precise enough to lean on.
import createClient from "openapi-fetch";
import type { paths } from "./schema";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8000" });

export async function mistakes(): Promise<void> {
  // @ts-expect-error invoiceId is required: it is what the server asks RuStore about
  await client.POST("/api/payments/verify", { body: { purchaseId: "p", productId: "points_100" } });
  // @ts-expect-error invoiceId is a string, as the Pay SDK returns it
  await client.POST("/api/payments/verify", { body: { invoiceId: 1, purchaseId: "p", productId: "points_100" } });
  // @ts-expect-error no such route
  await client.POST("/api/payments/verifyy", { body: {} });
  // @ts-expect-error kind is greeting or card
  await client.POST("/api/generation/request", { body: { kind: "video", occasion: "birthday" }, params: { header: { "Idempotency-Key": "k" } } });
  const { data } = await client.GET("/api/customer");
  // @ts-expect-error the balance is a number of points
  const balance: string | undefined = data?.balance;
  void balance;
}
