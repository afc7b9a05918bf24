//! `GET /openapi.json`: the HTTP contract as an OpenAPI 3.1 document,
//! generated from the same `routes!` declarations that build the router
//! ([`super::router`]), so a route cannot be served without being
//! documented or documented without being served. Each handler's
//! `#[utoipa::path]` gives its operation id, parameters and responses; the
//! shapes are [`super::schema`]'s. What holds for a whole group is added
//! here once, from the group the route is in rather than from each
//! annotation: the API-key scheme and `401` on every merchant route, the
//! body errors (`400`, `413`, `415`) on every route that reads a JSON body,
//! `500`/`503` on every route that reads the store. The `webhooks` section
//! describes what Zhifu sends to the merchant's endpoint.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, PathsBuilder, Ref, RefOr,
    Required, Response as ApiResponse, ResponseBuilder, ServerBuilder,
};
use utoipa::{PartialSchema, ToSchema};
use zhifu_store::{EventType, SubscriptionEventType};

use super::schema;
use crate::webhook;

/// The security scheme of the merchant API.
pub const API_KEY_SCHEME: &str = "apiKey";
/// The security scheme of `/metrics` when `ZHIFU_METRICS_TOKEN` is set.
pub const METRICS_TOKEN_SCHEME: &str = "metricsToken";

/// The serialised document, built once with the router and shared by every
/// `GET /openapi.json`.
#[derive(Debug, Clone)]
pub struct ApiDocument(Arc<str>);

impl ApiDocument {
    /// Serialises `doc`.
    pub fn new(doc: &OpenApi) -> Self {
        // Serialising a value made only of strings, maps and numbers cannot
        // fail; an empty object would still be valid JSON if it ever did.
        let text = serde_json::to_string(doc).unwrap_or_else(|_| "{}".to_owned());
        ApiDocument(Arc::from(text))
    }

    /// The `200 application/json` answer.
    pub fn response(&self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}

/// Builds the document from the merchant group (behind the API key), the
/// public group, and `parts` served next to them by the same process (the
/// checkout's API under `zhifu dev` / `zhifu serve`).
pub fn assemble(merchant: OpenApi, public: OpenApi, parts: Vec<OpenApi>) -> OpenApi {
    let mut merchant = merchant;
    for_each_operation(&mut merchant, |op| {
        op.security = Some(vec![SecurityRequirement::new(
            API_KEY_SCHEME,
            Vec::<String>::new(),
        )]);
        add_error(op, "401", "`unauthorized`: missing or wrong API key");
        add_store_errors(op);
    });
    let mut public = public;
    for_each_operation(&mut public, |op| {
        if op.operation_id.as_deref() == Some("health") {
            add_error(op, "500", "`internal_error`");
        }
    });
    let mut doc = base();
    doc.merge(merchant);
    doc.merge(public);
    for part in parts {
        doc.merge(part);
    }
    for_each_operation(&mut doc, |op| {
        add_body_errors(op);
        absent_not_null(op);
    });
    doc.webhooks = Some(webhooks());
    doc
}

fn base() -> OpenApi {
    let mut doc = OpenApi::new(
        InfoBuilder::new()
            .title("Zhifu payment backend")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "Orders, Alipay payment parameters, verified notifications, query, refunds and \
                 close, plus the buyer-facing checkout API when a catalog is configured. Money is \
                 a decimal string (`\"88.88\"`), never a JSON number. Every error is \
                 `{\"error\":{\"code\",\"message\"}}` with a stable code; each code has one \
                 status. The `webhooks` section describes what Zhifu POSTs to \
                 `ZHIFU_WEBHOOK_URL`.",
            ))
            .build(),
        PathsBuilder::new(),
    );
    doc.servers = Some(vec![
        ServerBuilder::new()
            .url("/")
            .description(Some("The Zhifu server that serves this document"))
            .build(),
        ServerBuilder::new()
            .url("http://127.0.0.1:8080")
            .description(Some("`zhifu dev` on its default port"))
            .build(),
    ]);
    let bearer = |what: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(what))
                .build(),
        )
    };
    doc.components = Some(
        ComponentsBuilder::new()
            .security_scheme(
                API_KEY_SCHEME,
                bearer("`Authorization: Bearer <ZHIFU_API_KEY>`"),
            )
            .security_scheme(
                METRICS_TOKEN_SCHEME,
                bearer("`Authorization: Bearer <ZHIFU_METRICS_TOKEN>`"),
            )
            .schema(schema::ErrorBody::name(), schema::ErrorBody::schema())
            // Subscription webhooks are not the body of any route: named
            // here, with what they refer to, for the `webhooks` section.
            .schema_from::<schema::SubscriptionWebhookEvent>()
            .schema_from::<schema::SubscriptionWebhookData>()
            .schema_from::<schema::SubscriptionEventType>()
            .build(),
    );
    doc.tags = Some(
        [
            ("orders", "Orders and their payment parameters"),
            ("refunds", "Refunds of paid orders"),
            (
                "events",
                "State changes, their webhook deliveries, and the reports behind them",
            ),
            ("operations", "Health, metrics, reconcile and this document"),
            ("alipay", "Endpoints Alipay and the buyer's browser call"),
            (
                "oauth",
                "Alipay user authorization: the buyer's id for in-app (jsapi) payments",
            ),
            (
                "checkout",
                "The public checkout API for browsers; served when the checkout is on \
                 (always under `zhifu dev`, with `ZHIFU_CATALOG` under `zhifu serve`)",
            ),
        ]
        .into_iter()
        .map(|(name, what)| TagBuilder::new().name(name).description(Some(what)).build())
        .collect(),
    );
    doc
}

/// Every operation of `doc`, in every method slot.
pub fn for_each_operation(doc: &mut OpenApi, mut f: impl FnMut(&mut Operation)) {
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            f(op);
        }
    }
}

/// The operations of a path item with their methods.
pub fn operations(item: &PathItem) -> Vec<(HttpMethod, &Operation)> {
    [
        (HttpMethod::Get, &item.get),
        (HttpMethod::Put, &item.put),
        (HttpMethod::Post, &item.post),
        (HttpMethod::Delete, &item.delete),
        (HttpMethod::Options, &item.options),
        (HttpMethod::Head, &item.head),
        (HttpMethod::Patch, &item.patch),
        (HttpMethod::Trace, &item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn error_response(description: &str) -> RefOr<ApiResponse> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema::ErrorBody::name())))
                .build(),
        )
        .into()
}

fn add_error(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error_response(description));
}

fn add_store_errors(op: &mut Operation) {
    add_error(
        op,
        "500",
        "`internal_error`: something failed on our side; retry",
    );
    add_error(
        op,
        "503",
        "`database_unavailable`: the database did not answer; retry",
    );
}

/// Every JSON body goes through [`super::body::JsonObject`] and
/// [`super::body::Fields`], whose refusals are the same everywhere.
fn add_body_errors(op: &mut Operation) {
    let reads_json = match &op.request_body {
        Some(RefOr::T(body)) => body.content.contains_key("application/json"),
        _ => false,
    };
    if !reads_json {
        return;
    }
    add_error(
        op,
        "400",
        "`invalid_json`, `unknown_field`, `invalid_field`, `invalid_amount` or \
         `invalid_idempotency_key`",
    );
    add_error(op, "413", "`payload_too_large`");
    add_error(
        op,
        "415",
        "`unsupported_media_type`: send `application/json`",
    );
}

/// utoipa writes an optional parameter (`Option<T>`) as `T` or `null`, but
/// a query parameter or header is either absent or text: `?limit=null` is
/// refused like any other non-number.
fn absent_not_null(op: &mut Operation) {
    for p in op.parameters.iter_mut().flatten() {
        let RefOr::T(p) = p else { continue };
        if let Some(RefOr::T(Schema::Object(o))) = &mut p.schema
            && let SchemaType::Array(types) = &o.schema_type
        {
            let kept: Vec<Type> = types
                .iter()
                .filter(|t| **t != Type::Null)
                .cloned()
                .collect();
            o.schema_type = match kept.as_slice() {
                [one] => SchemaType::Type(one.clone()),
                _ => SchemaType::Array(kept),
            };
        }
    }
}

/// Every event type, in a fixed order. The match is exhaustive, so a new
/// event type does not compile until it is described here.
fn webhook_event_types() -> Vec<(EventType, &'static str, &'static str)> {
    let describe = |e: EventType| match e {
        EventType::Paid => ("orderPaid", "The buyer paid: `pending → paid`."),
        EventType::PartiallyRefunded => (
            "orderPartiallyRefunded",
            "A refund succeeded and the order is not yet fully refunded.",
        ),
        EventType::Refunded => (
            "orderRefunded",
            "Refunds reached the total: `paid → refunded`.",
        ),
        EventType::Closed => (
            "orderClosed",
            "The order can no longer be paid: `pending/closing → closed`.",
        ),
        EventType::PaidAfterClose => (
            "orderPaidAfterClose",
            "The buyer paid an order that had been closed; by default Zhifu refunds it.",
        ),
    };
    [
        EventType::Paid,
        EventType::PartiallyRefunded,
        EventType::Refunded,
        EventType::Closed,
        EventType::PaidAfterClose,
    ]
    .into_iter()
    .map(|e| {
        let (id, what) = describe(e);
        (e, id, what)
    })
    .collect()
}

/// Every subscription event type (exhaustive, as above).
fn subscription_event_types() -> Vec<(SubscriptionEventType, &'static str, &'static str)> {
    let describe = |e: SubscriptionEventType| match e {
        SubscriptionEventType::Active => (
            "subscriptionActive",
            "The buyer signed the agreement (Alipay's verified word): charging starts.",
        ),
        SubscriptionEventType::Charged => (
            "subscriptionCharged",
            "A period was charged; `data.order` is the paid order of that period.",
        ),
        SubscriptionEventType::PaymentFailed => (
            "subscriptionPaymentFailed",
            "Alipay refused a period's charge; it is retried on a bounded schedule, then the \
             subscription is `past_due`.",
        ),
        SubscriptionEventType::Canceled => (
            "subscriptionCanceled",
            "The agreement ended (unsigned by the buyer, the merchant or Alipay): no more charges.",
        ),
    };
    SubscriptionEventType::ALL
        .into_iter()
        .map(|e| {
            let (id, what) = describe(e);
            (e, id, what)
        })
        .collect()
}

fn header_param(name: &str, description: &str, example: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .schema(Some(String::schema()))
        .description(Some(description))
        .example(Some(serde_json::Value::from(example)))
}

fn webhooks() -> utoipa::openapi::path::Paths {
    let mut paths = PathsBuilder::new();
    let orders = webhook_event_types()
        .into_iter()
        .map(|(e, id, what)| (e.as_str(), id, what, schema::WebhookEvent::name()));
    let subscriptions = subscription_event_types().into_iter().map(|(e, id, what)| {
        (
            e.as_str(),
            id,
            what,
            schema::SubscriptionWebhookEvent::name(),
        )
    });
    for (event, id, what, body_schema) in orders.chain(subscriptions) {
        let body = AllOfBuilder::new()
            .item(Ref::from_schema_name(body_schema))
            .item(
                ObjectBuilder::new().property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([event])),
                ),
            );
        let params = [
            header_param(
                webhook::SIGNATURE_HEADER,
                "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{body}\">`, keyed with \
                 `ZHIFU_WEBHOOK_SECRET`; verify over the raw body, refuse a `t` more than \
                 five minutes from your clock",
                "t=1767225600,v1=<64 hex digits>",
            ),
            header_param(
                webhook::EVENT_ID_HEADER,
                "The event id (as in the body)",
                "evt_0190f6c5a2b37e61b0c1d2e3f4a5b6c7",
            ),
            header_param("Zhifu-Event-Type", "The event type", event),
            header_param(
                webhook::STANDARD_ID_HEADER,
                "Standard Webhooks: the event id",
                "evt_0190f6c5a2b37e61b0c1d2e3f4a5b6c7",
            ),
            header_param(
                webhook::STANDARD_TIMESTAMP_HEADER,
                "Standard Webhooks: Unix seconds, the same `t`",
                "1767225600",
            ),
            header_param(
                webhook::STANDARD_SIGNATURE_HEADER,
                "Standard Webhooks: `v1,<base64 HMAC-SHA256 of \"{id}.{t}.{body}\">` with \
                 the same key (`whsec_` + base64 of it for the standardwebhooks libraries)",
                "v1,<base64>",
            ),
        ];
        let mut op = Operation::new();
        op.operation_id = Some(format!("webhook{}", capitalised(id)));
        op.summary = Some(format!("`{event}`"));
        op.description = Some(what.to_owned());
        op.tags = Some(vec!["webhooks".to_owned()]);
        op.parameters = Some(params.into_iter().map(|p| RefOr::T(p.build())).collect());
        op.request_body = Some(RefOr::T(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(body)).build(),
                )
                .build(),
        ));
        op.responses.responses.insert(
            "2XX".to_owned(),
            ResponseBuilder::new()
                .description("Delivered; the event is not sent again")
                .into(),
        );
        op.responses.responses.insert(
            "default".to_owned(),
            ResponseBuilder::new()
                .description(
                    "Any other answer, or none within the timeout: retried with backoff up to \
                     `ZHIFU_WEBHOOK_MAX_ATTEMPTS` times",
                )
                .into(),
        );
        paths = paths.path(event, PathItem::new(HttpMethod::Post, op));
    }
    paths.build()
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::error::ErrorCode;
    use super::*;

    #[test]
    fn every_event_type_has_a_webhook() {
        let hooks = webhooks();
        for (event, _, _) in webhook_event_types() {
            assert!(
                hooks.paths.contains_key(event.as_str()),
                "{} has no webhook entry",
                event.as_str()
            );
            assert_eq!(EventType::parse(event.as_str()), Some(event));
        }
        for (event, _, _) in subscription_event_types() {
            assert!(
                hooks.paths.contains_key(event.as_str()),
                "{}",
                event.as_str()
            );
        }
        assert_eq!(hooks.paths.len(), 9);
    }

    /// The crate README's table of codes is the contract merchants read:
    /// every code is in the row of its status, and the table has no code the
    /// server does not answer with.
    #[test]
    fn every_error_code_is_in_the_readme_under_its_status() {
        let readme = include_str!("../../README.md");
        let rows: Vec<(u16, Vec<String>)> = readme
            .lines()
            .filter_map(|l| {
                let mut cells = l.split('|').map(str::trim).filter(|c| !c.is_empty());
                let status = cells.next()?.parse::<u16>().ok()?;
                // Codes are the backticked words outside parentheses.
                let mut depth = 0;
                let cell: String = cells
                    .next()?
                    .chars()
                    .filter(|c| {
                        match c {
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ => return depth == 0,
                        }
                        false
                    })
                    .collect();
                let codes = cell
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_owned)
                    .collect::<Vec<_>>();
                Some((status, codes))
            })
            .collect();
        for c in ErrorCode::ALL {
            let homes: Vec<u16> = rows
                .iter()
                .filter(|(_, codes)| codes.iter().any(|x| x == c.as_str()))
                .map(|(s, _)| *s)
                .collect();
            assert_eq!(
                homes,
                vec![c.status().as_u16()],
                "README row of `{}`",
                c.as_str()
            );
        }
        for (_, codes) in &rows {
            for code in codes {
                assert!(
                    ErrorCode::ALL.iter().any(|c| c.as_str() == code),
                    "README documents `{code}`, which the server never answers"
                );
            }
        }
    }
}
