// Showing a generated postcard with Coil (io.coil-kt:coil:2.x).
// Reference code for docs/android.md: it is NOT compiled in this repository.
package com.example.rustorebackend

import android.widget.ImageView
import coil.load

/**
 * `signedImageUrl` loads like any public image until it expires (IMAGE_URL_TTL_S, default an hour): no
 * header, so it also works in notifications, share sheets and image caches keyed by URL. `imageUrl` is
 * the stable address; it needs the bearer token, so it goes with the Authorization header. After the
 * signed URL expired (403 image_url_expired), GET /api/generation/{id} answers a fresh signed one.
 */
fun ImageView.showPostcard(generation: Generation, store: TokenStore) {
    val signed = generation.signedImageUrl
    val plain = generation.imageUrl ?: return
    if (signed != null) {
        load(signed) { crossfade(true) }
    } else {
        load(plain) {
            crossfade(true)
            store.accessToken?.let { addHeader("Authorization", "Bearer $it") }
        }
    }
}
