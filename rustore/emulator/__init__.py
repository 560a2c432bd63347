"""RuStore Public API emulator: a real Tornado app with RuStore's paths, state machines and webhooks.

Field-level assumptions (the stored docs are cut off, see API.md §2.4, §3.6, §4.1, §5.6):
* P3/P4 bodies default to RuStore's published `InvoicePaymentDto` (API.md §13, `record_shape="minimal"`):
  `invoiceId, invoiceDate, refundDate, invoiceStatus` (lowercase), `developerPayload, applicationCode,
  ownerCode, paymentInfo{...}, order{orderId, orderNumber, visualName, amountCreate, amountCurrent,
  currency, itemCode, description, language}`, with no `purchaseId`. `record_shape="rich"` keeps the
  older body whose `purchaseId`, `appId`, `order.quantity`, `order.appUserId` and `order.purchaseType`
  are OUR ASSUMPTION. The purchase list by appUserId (`purchases_by_user`) has an ASSUMED envelope.
* V4 subscriptions return the V3 field set (`startTimeMillis`, `expiryTimeMillis`, `autoRenewing`,
  `priceAmountMicros`, `paymentState`, `cancelReason`, `orderId`, `acknowledgementState`,
  `purchaseType`) plus `developerPayload` (documented) and `externalAccountId`, `gracePeriodEnabled`,
  `userCancellationTimeMillis` (third-party code). Grace is shown as a future expiry with
  paymentState 0, hold as a past expiry with paymentState 0 (Google semantics, ASSUMED).
* Catalog elements add `description, status, price, currency, subscriptionPeriod` (ASSUMED).
* Subscription notifications use the third-party `SUBSCRIPTION_EVENT` shape (§5.6).
* Non-auth errors use HTTP 401 (expired token), 403 (key not covering app/sandbox), 404 with code
  NOT_FOUND, 400/409 otherwise (statuses ASSUMED; messages as documented).
* Notification retry gaps: 16 geometric gaps summing to 36 h, scalable (`retry_scale`).
* P4 filters by the invoice's Moscow-time date; statuses accepted repeated or comma-separated.
* Legacy token endpoints (P1, S1, S4) serve only purchases simulated with `sdk="billing"`;
  V4/S7/S8 only Pay SDK ones (`sdk="pay"`, the default).
"""

from rustore.emulator.clock import Clock, FakeClock, SystemClock
from rustore.emulator.config import EmulatorApp, EmulatorProduct, default_retry_schedule
from rustore.emulator.core import Emulator
from rustore.emulator.errors import EmulatorError
from rustore.emulator.faults import ENDPOINTS, MODES
from rustore.emulator.notifier import encrypt_payload
from rustore.signing import KeyPair, generate_key_pair

__all__ = [
    "ENDPOINTS",
    "MODES",
    "Clock",
    "Emulator",
    "EmulatorApp",
    "EmulatorError",
    "EmulatorProduct",
    "FakeClock",
    "KeyPair",
    "SystemClock",
    "default_retry_schedule",
    "encrypt_payload",
    "generate_key_pair",
]
