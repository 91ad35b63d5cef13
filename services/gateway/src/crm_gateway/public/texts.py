"""The public pages' words in Russian and English, and choosing the language of a request."""
# ruff: noqa: RUF001 - Russian text: its Cyrillic letters are meant

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "invalid_title": "This link is not valid",
        "invalid_body": "The link may be incomplete or no longer valid. Please check it.",
        "unavailable_title": "Temporarily unavailable",
        "unavailable_body": "Something went wrong on our side. Please try again in a few minutes.",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop sending messages to {address}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed_body": "We will not send you these messages any more.",
        "already_unsubscribed": "{address} is already unsubscribed.",
        "event_when": "When",
        "event_where": "Where",
        "event_seats": "Seats left",
        "event_register": "Register",
        "event_registered_title": "You are registered",
        "event_registered_body": "We look forward to seeing you.",
        "event_full_title": "No seats left",
        "event_full_body": "Sorry, this event is fully booked.",
        "order_title": "Order {number}",
        "order_status": "Status",
        "order_total": "Total",
        "order_updated": "Updated",
        "order_history": "History",
        "status_created": "Created",
        "status_invoiced": "Invoiced",
        "status_paid": "Paid",
        "status_shipped": "Shipped",
        "status_delivered": "Delivered",
        "status_cancelled": "Cancelled",
        "form_thanks_title": "Thank you!",
        "form_thanks_body": "We have received your request and will contact you soon.",
        "form_invalid_title": "Please check the form",
        "form_not_found_title": "Form not found",
        "form_not_found_body": "This form does not exist or is no longer accepting entries.",
        "back": "Go back",
    },
    "ru": {
        "invalid_title": "Ссылка недействительна",
        "invalid_body": "Возможно, ссылка неполная или устарела. Пожалуйста, проверьте её.",
        "unavailable_title": "Временно недоступно",
        "unavailable_body": "У нас что-то пошло не так. Попробуйте ещё раз через несколько минут.",
        "unsubscribe_title": "Отписка",
        "unsubscribe_question": "Больше не присылать сообщения на {address}?",
        "unsubscribe_button": "Отписаться",
        "unsubscribed_title": "Вы отписаны",
        "unsubscribed_body": "Мы больше не будем присылать вам эти сообщения.",
        "already_unsubscribed": "Адрес {address} уже отписан.",
        "event_when": "Когда",
        "event_where": "Где",
        "event_seats": "Осталось мест",
        "event_register": "Зарегистрироваться",
        "event_registered_title": "Вы зарегистрированы",
        "event_registered_body": "Будем рады вас видеть.",
        "event_full_title": "Мест нет",
        "event_full_body": "К сожалению, все места на это мероприятие заняты.",
        "order_title": "Заказ {number}",
        "order_status": "Статус",
        "order_total": "Сумма",
        "order_updated": "Обновлён",
        "order_history": "История",
        "status_created": "Создан",
        "status_invoiced": "Выставлен счёт",
        "status_paid": "Оплачен",
        "status_shipped": "Отправлен",
        "status_delivered": "Доставлен",
        "status_cancelled": "Отменён",
        "form_thanks_title": "Спасибо!",
        "form_thanks_body": "Мы получили вашу заявку и скоро с вами свяжемся.",
        "form_invalid_title": "Проверьте, пожалуйста, форму",
        "form_not_found_title": "Форма не найдена",
        "form_not_found_body": "Такой формы нет или она больше не принимает заявки.",
        "back": "Назад",
    },
}


def language(request: Request) -> str:
    """`?lang=ru|en` first, else the best of them in Accept-Language, else English."""
    asked = request.query_params.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for part in request.headers.get("accept-language", "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        code = tag.strip().lower().split("-", 1)[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if code in LANGUAGES and q > best_q:
            best, best_q = code, q
    return best
