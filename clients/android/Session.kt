// Tokens: where they live on the device and how they are refreshed (with rotation) under OkHttp.
// Reference code for docs/android.md: it is NOT compiled in this repository.
package com.example.rustorebackend

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import kotlinx.serialization.builtins.serializer
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import okhttp3.Authenticator
import okhttp3.Interceptor
import okhttp3.MediaType.Companion.toMediaType
import okhttp3.OkHttpClient
import okhttp3.Request
import okhttp3.RequestBody.Companion.toRequestBody
import okhttp3.Response
import okhttp3.Route
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The refresh token is a long-lived credential: it is kept encrypted with an AES-GCM key that never
 * leaves the Android Keystore, in app-private SharedPreferences (excluded from backups: see
 * docs/android.md). The access token (15 minutes) stays in memory only.
 */
class TokenStore(context: Context) {
    private val prefs = context.getSharedPreferences("session", Context.MODE_PRIVATE)
    @Volatile var accessToken: String? = null
        private set

    private fun key(): SecretKey {
        val keyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (keyStore.getEntry(ALIAS, null) as? KeyStore.SecretKeyEntry)?.let { return it.secretKey }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        generator.init(
            KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .build(),
        )
        return generator.generateKey()
    }

    private fun encrypt(plain: String): String {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding").apply { init(Cipher.ENCRYPT_MODE, key()) }
        return Base64.encodeToString(cipher.iv + cipher.doFinal(plain.toByteArray()), Base64.NO_WRAP)
    }

    private fun decrypt(stored: String): String? = runCatching {
        val bytes = Base64.decode(stored, Base64.NO_WRAP)
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, bytes, 0, 12))
        String(cipher.doFinal(bytes, 12, bytes.size - 12))
    }.getOrNull() // a key lost with a device restore: the user signs in again

    val refreshToken: String? get() = prefs.getString("refresh", null)?.let(::decrypt)

    /** The device token an earlier sign-in returned: it exempts this device from the per-e-mail login budget. */
    val deviceToken: String? get() = prefs.getString("device", null)?.let(::decrypt)

    @Synchronized
    fun save(pair: TokenPair) {
        accessToken = pair.accessToken
        prefs.edit().putString("refresh", encrypt(pair.refreshToken))
            .apply { pair.deviceToken?.let { putString("device", encrypt(it)) } }
            .commit() // commit, not apply: a rotated refresh token must be on disk before it is used again
    }

    @Synchronized
    fun clear() {
        accessToken = null
        prefs.edit().remove("refresh").commit() // the device token stays: it belongs to the device, not the session
    }

    private companion object { const val ALIAS = "backend-session" }
}

/** Adds `Authorization: Bearer <access token>` to every call of the authenticated client. */
class BearerInterceptor(private val store: TokenStore) : Interceptor {
    override fun intercept(chain: Interceptor.Chain): Response {
        val token = store.accessToken ?: return chain.proceed(chain.request())
        return chain.proceed(chain.request().newBuilder().header("Authorization", "Bearer $token").build())
    }
}

/**
 * On 401 `invalid_token` (expired access token): refresh once and repeat the request.
 *
 * Refresh tokens rotate: every refresh answers a new pair and the old refresh token is dead. Sending an
 * old one again is treated as theft and ends the whole session (401 `refresh_token_reused`). So refreshes
 * are serialised: a request that waited for another thread's refresh just retries with the new token.
 * `session_ended` and a failed refresh are final: the user signs in again (`onSignedOut`).
 */
class RefreshAuthenticator(
    private val baseUrl: String,
    private val store: TokenStore,
    private val plainHttp: OkHttpClient,
    private val onSignedOut: (reason: String?) -> Unit,
) : Authenticator {
    private val json = Json { ignoreUnknownKeys = true }

    override fun authenticate(route: Route?, response: Response): Request? {
        if (response.priorResponse != null) return null // this was the repeat already: give up, do not loop
        val reason = response.peekBody(4096).string().let { text ->
            runCatching { json.parseToJsonElement(text).jsonObject["reason"]?.jsonPrimitive?.content }.getOrNull()
        }
        if (reason != "invalid_token") { // missing_token, session_ended: nothing a refresh can fix
            if (reason == "session_ended") { store.clear(); onSignedOut(reason) }
            return null
        }
        val used = response.request.header("Authorization")?.removePrefix("Bearer ")
        synchronized(this) {
            if (store.accessToken != null && store.accessToken != used) return retry(response) // another thread refreshed
            val refresh = store.refreshToken ?: run { onSignedOut("no_session"); return null }
            val body = """{"refreshToken":${Json.encodeToString(String.serializer(), refresh)}}"""
            val request = Request.Builder().url("$baseUrl/api/auth/refresh")
                .post(body.toRequestBody("application/json".toMediaType())).build()
            plainHttp.newCall(request).execute().use { answer ->
                if (!answer.isSuccessful) { // refresh_token_reused, session_ended, invalid_refresh_token...
                    store.clear()
                    onSignedOut(runCatching {
                        json.parseToJsonElement(answer.body!!.string()).jsonObject["reason"]?.jsonPrimitive?.content
                    }.getOrNull())
                    return null
                }
                store.save(json.decodeFromString(TokenPair.serializer(), answer.body!!.string()))
            }
        }
        return retry(response)
    }

    private fun retry(response: Response): Request =
        response.request.newBuilder()
            .header("Authorization", "Bearer ${store.accessToken}") // the Idempotency-Key header goes along unchanged
            .build()
}

/** The two clients BackendApi needs: one plain, one that authenticates and refreshes. */
fun backendApi(baseUrl: String, store: TokenStore, onSignedOut: (String?) -> Unit): BackendApi {
    val plain = OkHttpClient.Builder().build()
    val authed = plain.newBuilder()
        .addInterceptor(BearerInterceptor(store))
        .authenticator(RefreshAuthenticator(baseUrl, store, plain, onSignedOut))
        .build()
    return BackendApi(baseUrl, authed, plain)
}
