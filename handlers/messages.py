"""Human-readable error texts in English and Russian, chosen by Accept-Language (default English).

Only the `error` text changes with the language; `reason` and `code` never do. English answers keep
the message raised at the call site (it may name a limit or a field); Russian answers use the text
below for the reason. tests/handlers/test_messages.py proves every reason the OpenAPI document lists
has both texts here.
"""

from __future__ import annotations

LOCALES = ("en", "ru")
DEFAULT_LOCALE = "en"

# reason -> (English, Russian)
TEXTS: dict[str, tuple[str, str]] = {
    # shared by every route
    "bad_request": ("Bad request.", "Некорректный запрос."),
    "validation_failed": ("Some fields are invalid.", "Некоторые поля заполнены неверно."),
    "invalid_json": ("The request body is not valid JSON.", "Тело запроса — не корректный JSON."),
    "payload_too_large": ("The request body is too large.", "Тело запроса слишком большое."),
    "unsupported_media_type": ("Send the body as application/json.", "Отправьте тело запроса как application/json."),
    "missing_token": ("An access token is required.", "Нужен токен доступа."),
    "invalid_token": ("The access token is invalid or expired.", "Токен доступа недействителен или истёк."),
    "session_ended": ("This session has ended; sign in again.", "Сеанс завершён, войдите снова."),
    "unauthorized": ("Authentication is required.", "Требуется вход."),
    "forbidden": ("Forbidden.", "Доступ запрещён."),
    "not_found": ("No such endpoint.", "Такого адреса нет."),
    "method_not_allowed": ("This method is not allowed here.", "Этот метод здесь не поддерживается."),
    "conflict": ("The request conflicts with the current state.", "Запрос противоречит текущему состоянию."),
    "unprocessable": ("The request cannot be processed.", "Запрос не может быть обработан."),
    "rate_limited": ("Too many requests; slow down.", "Слишком много запросов, повторите позже."),
    "internal_error": ("Internal server error.", "Внутренняя ошибка сервера."),
    "bad_gateway": ("A service this server depends on failed.", "Сбой сервиса, от которого зависит сервер."),
    "service_unavailable": ("The service is unavailable; retry later.", "Сервис недоступен, повторите позже."),
    "server_busy": ("The server is busy; retry shortly.", "Сервер перегружен, повторите чуть позже."),
    "https_required": ("This API is only served over HTTPS.", "Этот API доступен только по HTTPS."),
    "cors_origin_not_allowed": ("This origin may not call the API.", "С этого источника нельзя обращаться к API."),
    "dependency_unavailable": ("A dependency is unavailable.", "Недоступна зависимость сервиса."),
    "database_unavailable": ("The database is unavailable; retry later.", "База данных недоступна, повторите позже."),
    "invalid_cursor": ("The cursor is invalid.", "Некорректный курсор."),
    "idempotency_key_required": ("An Idempotency-Key header is required.", "Нужен заголовок Idempotency-Key."),
    "invalid_idempotency_key": ("The Idempotency-Key header is invalid.", "Некорректный заголовок Idempotency-Key."),
    "idempotency_key_mismatch": ("This Idempotency-Key was used with a different request.",
                                 "Этот Idempotency-Key уже использован с другим запросом."),
    "invalid_api_key": ("A valid server API key is required.", "Нужен действительный серверный API-ключ."),
    "too_many_requests": ("Too many verification requests; try again shortly.",
                          "Слишком много запросов проверки, повторите чуть позже."),
    "invalid_metrics_token": ("The metrics token is invalid.", "Неверный токен метрик."),
    "metrics_disabled": ("Metrics are not served here.", "Метрики здесь не отдаются."),
    # accounts and sessions
    "email_taken": ("An account with this email already exists.", "Учётная запись с этим адресом уже существует."),
    "invalid_credentials": ("Email or password is incorrect.", "Неверный адрес почты или пароль."),
    "too_many_login_attempts": ("Too many failed sign-in attempts; try again later.",
                                "Слишком много неудачных попыток входа, попробуйте позже."),
    "invalid_refresh_token": ("The refresh token is invalid or expired.", "Токен обновления недействителен или истёк."),
    "refresh_token_reused": ("Refresh token was already used; the session has been ended.",
                             "Токен обновления уже использован, сеанс завершён."),
    "session_not_found": ("No such session.", "Такого сеанса нет."),
    "user_not_found": ("User not found.", "Пользователь не найден."),
    "invalid_current_password": ("The current password is incorrect.", "Текущий пароль неверен."),
    "current_password_required": ("This account has a password: send currentPassword.",
                                  "У этой учётной записи есть пароль: передайте currentPassword."),
    "password_required": ("This account has no password yet; set one first.",
                          "У этой учётной записи ещё нет пароля, сначала задайте его."),
    "email_required": ("Give an email with the first password so you can sign in with it.",
                       "Укажите адрес почты вместе с первым паролем, чтобы входить по нему."),
    "invalid_or_expired_token": ("This link is invalid or has expired; ask for a new one.",
                                 "Ссылка недействительна или устарела, запросите новую."),
    "mail_not_configured": ("E-mail is not configured on this server.", "Отправка почты на сервере не настроена."),
    "email_already_verified": ("There is no unverified e-mail address on this account.",
                               "В учётной записи нет неподтверждённого адреса почты."),
    "reauthentication_required": ("Sign in again (within the last 10 minutes) to delete this account.",
                                  "Чтобы удалить учётную запись, войдите снова (не раньше чем 10 минут назад)."),
    # VK ID and Google
    "account_exists_link_required": ("An account with this email exists; sign in and link this provider.",
                                     "Учётная запись с этим адресом уже есть: войдите в неё и привяжите этот способ входа."),
    "identity_linked_elsewhere": ("This provider account is linked to another account.",
                                  "Этот аккаунт провайдера привязан к другой учётной записи."),
    "identity_not_found": ("No account of this provider is linked.", "Аккаунт этого провайдера не привязан."),
    "provider_already_linked": ("Another account of this provider is linked; unlink it first.",
                                "Уже привязан другой аккаунт этого провайдера, сначала отвяжите его."),
    "last_sign_in_method": ("This is the account's only way to sign in.",
                            "Это единственный способ входа в учётную запись."),
    "invalid_provider_token": ("The provider's token is invalid.", "Токен провайдера недействителен."),
    "unknown_provider": ("Unknown sign-in provider.", "Неизвестный способ входа."),
    "provider_not_configured": ("This sign-in provider is not configured.", "Этот способ входа не настроен."),
    "provider_unavailable": ("The sign-in provider is not reachable; retry later.",
                             "Провайдер входа недоступен, повторите позже."),
    "vk_access_token_not_accepted": ("VK access tokens are not accepted by this server.",
                                     "Сервер не принимает токены доступа VK."),
    # purchases and subscriptions
    "app_mismatch": ("The purchase belongs to another app.", "Покупка относится к другому приложению."),
    "unknown_product": ("Unknown product.", "Неизвестный товар."),
    "product_mismatch": ("The purchase is for another product.", "Покупка относится к другому товару."),
    "purchase_mismatch": ("The purchase does not match the request.", "Покупка не соответствует запросу."),
    "purchase_not_found": ("RuStore does not know this purchase.", "RuStore не знает эту покупку."),
    "purchase_not_paid": ("The purchase is not paid.", "Покупка не оплачена."),
    "purchase_refunded": ("The purchase was refunded.", "Деньги за покупку возвращены."),
    "purchase_belongs_to_another_user": ("The purchase belongs to another user.",
                                         "Покупка принадлежит другому пользователю."),
    "sandbox_not_allowed": ("Test purchases are not accepted.", "Тестовые покупки не принимаются."),
    "order_required": ("Create an order before paying.", "Перед оплатой создайте заказ."),
    "not_a_one_time_product": ("This product is not a one-time purchase.", "Этот товар не разовая покупка."),
    "not_a_points_product": ("This product is not a points pack.", "Этот товар не пакет баллов."),
    "not_a_subscription_product": ("This product is not a subscription.", "Этот товар не подписка."),
    "subscription_not_found": ("No such subscription.", "Такой подписки нет."),
    "subscription_not_active": ("This subscription is not running.", "Эта подписка не действует."),
    "cancel_not_supported": ("This subscription can only be cancelled in the RuStore app.",
                             "Эту подписку можно отменить только в приложении RuStore."),
    "rustore_unavailable": ("RuStore is not reachable right now; retry later.",
                            "RuStore сейчас недоступен, повторите позже."),
    "rustore_misconfigured": ("The server cannot authenticate with RuStore.", "Сервер не может авторизоваться в RuStore."),
    "rustore_not_configured": ("RuStore is not configured on this server.", "RuStore на сервере не настроен."),
    "rustore_rejected": ("RuStore refused the request.", "RuStore отклонил запрос."),
    "webhooks_not_configured": ("Webhooks are not configured on this server.", "Вебхуки на сервере не настроены."),
    "webhook_source_not_allowed": ("This address may not send webhooks.", "С этого адреса нельзя отправлять вебхуки."),
    "invalid_notification": ("The notification is invalid.", "Некорректное уведомление."),
    "entitlement_not_found": ("No entitlement with this name is declared.", "Такого права доступа нет."),
    # points and generations
    "insufficient_points": ("Not enough points.", "Недостаточно баллов."),
    "points_busy": ("The wallet is busy; retry shortly.", "Кошелёк занят, повторите чуть позже."),
    "generation_failed": ("The generation failed; the points were returned.", "Генерация не удалась, баллы возвращены."),
    "generation_in_progress": ("This generation is still running.", "Эта генерация ещё выполняется."),
    "generation_not_found": ("No such generation.", "Такой генерации нет."),
    "image_not_found": ("No such image.", "Такого изображения нет."),
    "invalid_image_signature": ("This image link is not valid.", "Ссылка на изображение недействительна."),
    "image_url_expired": ("This image link has expired; read the generation again for a new one.",
                          "Срок действия ссылки на изображение истёк; запросите генерацию снова."),
}


def preferred_locale(header: str | None) -> str:
    """The supported language the Accept-Language header prefers most (q-values honoured), else English."""
    best, best_q = DEFAULT_LOCALE, 0.0
    for position, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LOCALES and q > best_q:
            best, best_q = lang, q - position * 1e-6  # equal q: the earlier one wins
    return best


def localize(reason: str, message: str, accept_language: str | None) -> str:
    """The error text for this reason in the caller's language (the call site's English text by default)."""
    if preferred_locale(accept_language) == "ru" and reason in TEXTS:
        return TEXTS[reason][1]
    return message or TEXTS.get(reason, ("", ""))[0]
