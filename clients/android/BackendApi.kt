// The backend's HTTP API as the app uses it: JSON models and one suspend function per call.
// Reference code for docs/android.md: it is NOT compiled in this repository. Dependencies assumed:
// com.squareup.okhttp3:okhttp:4.12.x, org.jetbrains.kotlinx:kotlinx-serialization-json:1.7.x, kotlinx-coroutines.
package com.example.rustorebackend

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import kotlinx.serialization.Serializable
import kotlinx.serialization.encodeToString
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonObject
import okhttp3.MediaType.Companion.toMediaType
import okhttp3.OkHttpClient
import okhttp3.Request
import okhttp3.RequestBody.Companion.toRequestBody
import java.util.UUID

@Serializable
data class TokenPair(
    val userId: String,
    val accessToken: String,
    val refreshToken: String,
    val tokenType: String,
    val expiresIn: Int,
    val deviceToken: String? = null,
)

@Serializable
data class Credentials(val email: String, val password: String, val deviceToken: String? = null)

/** POST /api/payments/orders and /api/subscriptions/create answer this: pass all of it to the Pay SDK. */
@Serializable
data class Order(val orderId: String, val developerPayload: String, val productId: String, val appUserId: String)

/** What the Pay SDK's ProductPurchaseResult gives the app, as POST /api/payments/verify takes it. */
@Serializable
data class VerifyRequest(
    val invoiceId: String,
    val purchaseId: String,
    val productId: String,
    val orderId: String?,
    val sandbox: Boolean,
)

@Serializable
data class SubscriptionVerifyRequest(val purchaseId: String, val productId: String, val orderId: String?, val sandbox: Boolean)

/**
 * A verify answer. `balance` is the wallet now; `pointsGranted` is what this purchase granted, whichever
 * path credited it (`creditedBy`: "verify", "webhook" or "job"). `already_credited` is success too: the
 * webhook usually gets there before the app does.
 */
@Serializable
data class VerifyResult(
    val status: String,
    val balance: Int? = null,
    val pointsGranted: Int? = null,
    val creditedBy: String? = null,
)

@Serializable
data class Entitlement(val active: Boolean, val productId: String? = null, val expiresAt: String? = null, val willRenew: Boolean = false)

/** GET /api/customer: the one snapshot to render the wallet and premium state from. */
@Serializable
data class Customer(val userId: String, val balance: Int, val entitlements: Map<String, Entitlement>)

@Serializable
data class GenerationRequest(val kind: String, val occasion: String, val recipientName: String? = null, val language: String = "ru")

@Serializable
data class Generation(
    val generationId: String,
    val kind: String,
    val text: String,
    val imageUrl: String? = null,       // absolute; needs the bearer token
    val signedImageUrl: String? = null, // loads without any header until it expires (IMAGE_URL_TTL_S)
    val cost: Int,
    val balance: Int,
)

/** The shared error shape: {error, code, reason, details?}. Branch on `reason`; show `error` (ru/en by Accept-Language). */
@Serializable
data class ErrorBody(val error: String, val code: Int, val reason: String, val details: JsonObject? = null)

class ApiException(val status: Int, val body: ErrorBody?) :
    Exception(body?.let { "${it.reason}: ${it.error}" } ?: "HTTP $status") {
    val reason: String? get() = body?.reason
}

/** Answers a call can give besides an error: 200/201 with a body, or 202 (RuStore has not settled yet). */
sealed interface Answer<out T> {
    data class Done<T>(val value: T) : Answer<T>
    data object Pending : Answer<Nothing>
}

class BackendApi(
    private val baseUrl: String,          // e.g. https://api.example.com (never http:// in production)
    private val http: OkHttpClient,       // built by Session: adds the bearer token and refreshes it
    private val plainHttp: OkHttpClient,  // no auth: register, login, refresh
) {
    private val json = Json { ignoreUnknownKeys = true; explicitNulls = false }
    private val jsonType = "application/json".toMediaType()

    private suspend fun <T> call(client: OkHttpClient, request: Request, parse: (String) -> T): Answer<T> =
        withContext(Dispatchers.IO) {
            client.newCall(request).execute().use { response ->
                val text = response.body?.string().orEmpty()
                when {
                    response.code == 202 -> Answer.Pending
                    response.isSuccessful -> Answer.Done(parse(text))
                    else -> throw ApiException(response.code, runCatching { json.decodeFromString<ErrorBody>(text) }.getOrNull())
                }
            }
        }

    private inline fun <reified B> post(path: String, body: B, headers: Map<String, String> = emptyMap()): Request =
        Request.Builder().url(baseUrl + path)
            .post(json.encodeToString(body).toRequestBody(jsonType))
            .apply { headers.forEach { (k, v) -> header(k, v) } }
            .build()

    private fun get(path: String): Request = Request.Builder().url(baseUrl + path).get().build()

    private suspend fun <T> done(answer: Answer<T>): T = when (answer) {
        is Answer.Done -> answer.value
        Answer.Pending -> error("unexpected 202")
    }

    suspend fun register(email: String, password: String): TokenPair =
        done(call(plainHttp, post("/api/auth/register", Credentials(email, password))) { json.decodeFromString(it) })

    suspend fun login(email: String, password: String, deviceToken: String?): TokenPair =
        done(call(plainHttp, post("/api/auth/login", Credentials(email, password, deviceToken))) { json.decodeFromString(it) })

    suspend fun createOrder(productId: String): Order =
        done(call(http, post("/api/payments/orders", mapOf("productId" to productId))) { json.decodeFromString(it) })

    suspend fun verify(request: VerifyRequest): Answer<VerifyResult> =
        call(http, post("/api/payments/verify", request)) { json.decodeFromString(it) }

    suspend fun createSubscriptionOrder(productId: String): Order =
        done(call(http, post("/api/subscriptions/create", mapOf("productId" to productId))) { json.decodeFromString(it) })

    suspend fun verifySubscription(request: SubscriptionVerifyRequest): Answer<VerifyResult> =
        call(http, post("/api/subscriptions/verify", request)) { json.decodeFromString(it) }

    suspend fun customer(): Customer = done(call(http, get("/api/customer")) { json.decodeFromString(it) })

    /** One Idempotency-Key per user action: a retry after a timeout is charged once, and answers the same. */
    suspend fun generate(request: GenerationRequest, idempotencyKey: String = UUID.randomUUID().toString()): Generation =
        done(call(http, post("/api/generation/request", request, mapOf("Idempotency-Key" to idempotencyKey))) {
            json.decodeFromString(it)
        })
}
