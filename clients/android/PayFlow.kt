// The purchase sequence against this backend with RuStore's Pay SDK (ru.rustore.sdk:pay):
// server order -> Pay SDK purchase -> server verify (-> 202 pending: ask again, or read /api/customer).
// Reference code for docs/android.md: it is NOT compiled in this repository. Pay SDK names as in its
// Kotlin API (RuStorePayClient.instance.getPurchaseInteractor().purchase(ProductPurchaseParams, ...)).
package com.example.rustorebackend

import kotlinx.coroutines.delay
import kotlinx.coroutines.suspendCancellableCoroutine
import ru.rustore.sdk.core.tasks.OnFailureListener
import ru.rustore.sdk.core.tasks.OnSuccessListener
import ru.rustore.sdk.core.tasks.Task
import ru.rustore.sdk.pay.RuStorePayClient
import ru.rustore.sdk.pay.model.AppUserId
import ru.rustore.sdk.pay.model.DeveloperPayload
import ru.rustore.sdk.pay.model.OrderId
import ru.rustore.sdk.pay.model.PreferredPurchaseType
import ru.rustore.sdk.pay.model.ProductId
import ru.rustore.sdk.pay.model.ProductPurchaseParams
import ru.rustore.sdk.pay.model.ProductPurchaseResult
import ru.rustore.sdk.pay.model.RuStorePaymentException
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

sealed interface PurchaseOutcome {
    /** Paid and credited (by this call, the webhook or a job): show `balance`, `pointsGranted`. */
    data class Credited(val result: VerifyResult) : PurchaseOutcome
    /** Paid at RuStore but not settled yet: the server credits it when it is; the wallet shows it then. */
    data class Pending(val customer: Customer) : PurchaseOutcome
    data object Cancelled : PurchaseOutcome
}

class PayFlow(private val api: BackendApi) {
    private val purchases get() = RuStorePayClient.instance.getPurchaseInteractor()

    /** Buy a one-time product (a points pack). Subscriptions: [subscribe]. */
    suspend fun buy(productId: String): PurchaseOutcome {
        // 1. The server creates the order. Its ids travel through RuStore and come back in the webhook and
        //    in RuStore's purchase record: that is how the server knows which account paid, whoever asks first.
        val order = api.createOrder(productId)
        // 2. The Pay SDK shows RuStore's payment sheet. Pass the order exactly as the server answered it.
        val result = payOrCancelled(order, PreferredPurchaseType.ONE_STEP) ?: return PurchaseOutcome.Cancelled
        // 3. The server asks RuStore about the invoice and credits exactly once.
        val request = VerifyRequest(
            invoiceId = result.invoiceId.value,
            purchaseId = result.purchaseId.value,
            productId = result.productId.value,
            orderId = result.orderId?.value ?: order.orderId,
            sandbox = result.sandbox,
        )
        return settle { api.verify(request) }
    }

    /** Subscribe: the same three steps with the subscription endpoints (the Pay SDK call is the same). */
    suspend fun subscribe(productId: String): PurchaseOutcome {
        val order = api.createSubscriptionOrder(productId)
        val result = payOrCancelled(order, PreferredPurchaseType.ONE_STEP) ?: return PurchaseOutcome.Cancelled
        val request = SubscriptionVerifyRequest(
            purchaseId = result.purchaseId.value,
            productId = result.productId.value,
            orderId = result.orderId?.value ?: order.orderId,
            sandbox = result.sandbox,
        )
        return settle { api.verifySubscription(request) }
    }

    private suspend fun payOrCancelled(order: Order, type: PreferredPurchaseType): ProductPurchaseResult? = try {
        purchases.purchase(
            params = ProductPurchaseParams(
                productId = ProductId(order.productId),
                orderId = OrderId(order.orderId),
                developerPayload = DeveloperPayload(order.developerPayload),
                appUserId = AppUserId(order.appUserId),
            ),
            preferredPurchaseType = type,
        ).await()
    } catch (cancelled: RuStorePaymentException.ProductPurchaseCancelled) {
        null // the user closed the sheet; if they had paid anyway, the webhook credits it and /api/customer shows it
    }

    /**
     * 202 `pending`: RuStore has not settled the payment yet (bank apps, SBP). Ask again a few times with
     * backoff; the server credits it on its own when RuStore settles (webhook or job), so after that the
     * app only needs to re-read GET /api/customer (e.g. on the next app start). Network errors and
     * 503 `rustore_unavailable` (with Retry-After) are retried the same way: verify is idempotent.
     */
    private suspend fun settle(verify: suspend () -> Answer<VerifyResult>): PurchaseOutcome {
        var wait = 1_000L
        repeat(5) {
            val answer = try { verify() } catch (e: ApiException) {
                if (e.status != 503) throw e // 4xx: a definite answer (purchase_not_paid, product_mismatch, ...)
                null
            }
            if (answer is Answer.Done) return PurchaseOutcome.Credited(answer.value)
            delay(wait)
            wait *= 2
        }
        return PurchaseOutcome.Pending(api.customer())
    }
}

/** The Pay SDK's Task as a suspend call (listeners bridged; its blocking await() is not for the main thread). */
suspend fun <T> Task<T>.await(): T = suspendCancellableCoroutine { continuation ->
    addOnSuccessListener(OnSuccessListener { if (continuation.isActive) continuation.resume(it) })
    addOnFailureListener(OnFailureListener { if (continuation.isActive) continuation.resumeWithException(it) })
}
