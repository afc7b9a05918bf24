//! `GET /openapi.json`: the HTTP contract as an OpenAPI 3.1 document,
//! written by hand so that it says exactly what the handlers do. The error
//! codes come from [`ErrorCode::ALL`], so the list cannot drift from the
//! codes the handlers answer with.

use serde_json::{Value, json};

use super::error::ErrorCode;

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(desc: &str, schema: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The order id (`ord_…`)."})
}

fn idem_param() -> Value {
    json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255},
           "description": "Same key + same body returns the first result (header `Idempotent-Replayed: true`); same key + different body is 409 `idempotency_key_reused`."})
}

/// The document.
pub fn spec() -> Value {
    let money = json!({"type": "string", "pattern": "^[0-9]{1,9}(\\.[0-9]{1,2})?$", "examples": ["88.88"],
                       "description": "Yuan as a decimal string; never a JSON number."});
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let delivery = json!({"type": "object", "properties": {
        "attempt": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
        "http_status": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
        "duration_ms": {"type": "integer"}}});
    let webhook = json!({"type": "object", "properties": {
        "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer"},
        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "delivered_at": {"type": ["string", "null"], "format": "date-time"},
        "last_error": {"type": ["string", "null"]},
        "deliveries": {"type": "array", "items": delivery}}});
    let event = json!({"type": "object", "properties": {
        "id": {"type": "string", "description": "Event id (`evt_…`), the same in the webhook; receivers de-duplicate on it."},
        "type": {"type": "string", "enum": ["order.paid", "order.partially_refunded", "order.refunded", "order.closed", "order.paid_after_close"]},
        "previous_status": {"type": "string"}, "status": {"type": "string"},
        "refunded_amount": {"$ref": "#/components/schemas/Money"},
        "source": {"type": "string", "enum": ["notify", "query", "refund", "close"]},
        "created_at": {"type": "string", "format": "date-time"},
        "webhook": webhook}});
    let event_list =
        json!({"type": "object", "properties": {"data": {"type": "array", "items": event}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Zhifu payment backend", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Orders, Alipay payment parameters, verified notifications, query, refunds and close. Money is a \"88.88\" string; errors are {\"error\":{\"code\",\"message\"}} with a stable code."},
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "ZHIFU_API_KEY"}},
            "schemas": {
                "Money": money,
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string", "enum": codes}, "message": {"type": "string"}}}}},
                "Order": {"type": "object", "properties": {
                    "id": {"type": "string"}, "out_trade_no": {"type": "string"}, "subject": {"type": "string"},
                    "body": {"type": ["string", "null"]}, "total_amount": {"$ref": "#/components/schemas/Money"},
                    "status": {"type": "string", "enum": ["pending", "closing", "paid", "closed", "refunded"],
                        "description": "closing: closed by you while the buyer may still hold live payment parameters; becomes closed by itself, or paid (paid_after_close) if the buyer pays"},
                    "refunded_amount": {"$ref": "#/components/schemas/Money"},
                    "refund_pending_amount": {"$ref": "#/components/schemas/Money"},
                    "paid_after_close": {"type": "boolean", "description": "The buyer paid after the order was closed; by default Zhifu refunds it"},
                    "trade_no": {"type": ["string", "null"]}, "buyer_logon_id": {"type": ["string", "null"]},
                    "channel": {"type": ["string", "null"]},
                    "paid_at": {"type": ["string", "null"], "format": "date-time"},
                    "closed_at": {"type": ["string", "null"], "format": "date-time"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "metadata": {"type": ["object", "null"]}}},
                "CreateOrder": {"type": "object", "additionalProperties": false, "required": ["subject", "total_amount"], "properties": {
                    "subject": {"type": "string", "maxLength": 256, "description": "No `/`, `=` or `&` (Alipay's rule)."},
                    "total_amount": {"$ref": "#/components/schemas/Money"},
                    "body": {"type": "string", "maxLength": 128},
                    "out_trade_no": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "Generated when absent."},
                    "expires_in_minutes": {"type": "integer", "minimum": 1, "maximum": 21600},
                    "metadata": {"type": "object", "description": "At most 4096 bytes serialised."}}},
                "Pay": {"type": "object", "additionalProperties": false, "required": ["channel"], "properties": {
                    "channel": {"type": "string", "enum": ["page", "wap", "qr", "app", "jsapi"]},
                    "return_url": {"type": "string", "format": "uri", "description": "page/wap only; default is this server's /alipay/return"},
                    "buyer_id": {"type": "string", "description": "jsapi only"},
                    "buyer_open_id": {"type": "string", "description": "jsapi only"}}},
                "PayParams": {"type": "object", "required": ["channel"], "properties": {
                    "channel": {"type": "string"}, "url": {"type": "string", "description": "page/wap: redirect the buyer here (GET)"},
                    "form_html": {"type": "string", "description": "page/wap: auto-submitting POST form"},
                    "qr_code": {"type": "string", "description": "qr: content to render as a QR code"},
                    "order_string": {"type": "string", "description": "app: hand to the Alipay app SDK"},
                    "trade_no": {"type": "string", "description": "jsapi: hand to tradePay"}}},
                "CreateRefund": {"type": "object", "additionalProperties": false, "required": ["amount"], "properties": {
                    "amount": {"$ref": "#/components/schemas/Money"}, "reason": {"type": "string", "maxLength": 256}}},
                "Refund": {"type": "object", "properties": {
                    "id": {"type": "string"}, "order_id": {"type": "string"}, "amount": {"$ref": "#/components/schemas/Money"},
                    "status": {"type": "string", "enum": ["succeeded", "pending", "failed"]},
                    "reason": {"type": ["string", "null"]}, "out_request_no": {"type": "string"},
                    "failure_code": {"type": ["string", "null"]},
                    "origin": {"type": "string", "enum": ["merchant", "paid_after_close"], "description": "paid_after_close: Zhifu's own refund of a payment made after the order was closed"},
                    "created_at": {"type": "string", "format": "date-time"}}},
                "EventList": event_list,
                "OrderList": {"type": "object", "properties": {
                    "data": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
                    "next_cursor": {"type": ["string", "null"]}}}
            }
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/orders": {
                "post": {"summary": "Create an order", "parameters": [idem_param()], "requestBody": body("CreateOrder"),
                         "responses": {"201": ok("The order", "Order"), "400": err("Malformed body"), "401": err("Bad API key"), "409": err("Key reuse or out_trade_no taken")}},
                "get": {"summary": "List orders, newest first", "parameters": [
                            {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["pending", "closing", "paid", "closed", "refunded"]}},
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                            {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`next_cursor` of the previous page"}],
                        "responses": {"200": ok("A page", "OrderList"), "400": err("Bad query"), "401": err("Bad API key")}}
            },
            "/v1/orders/{id}": {"get": {"summary": "Get an order", "parameters": [id_param(),
                    {"name": "refresh", "in": "query", "schema": {"type": "boolean"}, "description": "On a pending order, ask Alipay (alipay.trade.query) and apply the verified answer; close it when expired."}],
                "responses": {"200": ok("The order", "Order"), "404": err("No such order"), "502": err("Alipay failed")}}},
            "/v1/orders/{id}/pay": {"post": {"summary": "Payment parameters for a channel", "parameters": [id_param()], "requestBody": body("Pay"),
                "responses": {"200": ok("What the buyer's device needs", "PayParams"), "409": err("Not payable or expired"), "502": err("Alipay failed")}}},
            "/v1/orders/{id}/refunds": {"post": {"summary": "Refund (partially or fully)", "parameters": [id_param(), idem_param()], "requestBody": body("CreateRefund"),
                "responses": {"201": ok("The refund; `pending` when Alipay's answer was not definite", "Refund"), "409": err("Not paid, too much, or key reuse")}},
                "get": {"summary": "The order's refunds, oldest first", "parameters": [id_param()],
                "responses": {"200": {"description": "{\"data\": [Refund]}"}, "404": err("No such order")}}},
            "/v1/orders/{id}/close": {"post": {"summary": "Close a pending order at Alipay and locally", "parameters": [id_param()],
                "responses": {"200": ok("The order, closed (final) or closing (the buyer may still hold live payment parameters)", "Order"), "409": err("Paid or refunded"), "502": err("Alipay failed")}}},
            "/v1/orders/{id}/events": {"get": {"summary": "The order's state changes (oldest first) with their webhook deliveries", "parameters": [id_param()],
                "responses": {"200": ok("The events", "EventList"), "404": err("No such order")}}},
            "/v1/orders/{id}/notifications": {"get": {"summary": "Every report recorded for the order (notifications, query and refund answers) with its outcome: applied, duplicate, or anomaly with the reason", "parameters": [id_param()],
                "responses": {"200": {"description": "{\"data\": [{id, received_at, source, notify_id, trade_status, outcome, reason}]}"}, "404": err("No such order")}}},
            "/v1/events": {"get": {"summary": "The newest order events of all orders, newest first, each as its webhook payload (what `zhifu listen` forwards)",
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}],
                "responses": {"200": {"description": "{\"data\": [webhook payload, …]}"}, "400": err("Bad query"), "401": err("Bad API key")}}},
            "/v1/reconcile": {"post": {"summary": "Run one reconcile pass now (for HTTP-only schedulers)",
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {
                    "min_age_seconds": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 120},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200},
                    "max_seconds": {"type": "integer", "minimum": 1, "maximum": 900, "default": 20}}}}}},
                "responses": {"200": {"description": "The pass's report: orders_checked, paid, closed, refunds_checked, refunds_succeeded, refunds_failed, webhooks_attempted, webhooks_delivered, webhooks_given_up, errors, stopped_at_deadline"},
                              "400": err("Bad body"), "401": err("Bad API key")}}},
            "/alipay/notify": {"post": {"summary": "Alipay's asynchronous notification", "security": [],
                "requestBody": {"content": {"application/x-www-form-urlencoded": {}}},
                "responses": {"200": {"description": "`success` (text/plain) once committed"}, "400": {"description": "`failure`: forged, malformed or mismatching; nothing changed"}, "500": {"description": "`failure`: try again later"}}}},
            "/alipay/return": {"get": {"summary": "Buyer's landing page after page/wap pay; shows the stored status only when its parameters carry Alipay's signature (otherwise nothing about any order), never changes state", "security": [],
                "responses": {"200": {"description": "HTML"}}}},
            "/healthz": {"get": {"summary": "Database check", "security": [], "responses": {"200": {"description": "{\"status\":\"ok\"}"}, "503": err("Database unavailable")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (public under `zhifu dev`; with `ZHIFU_METRICS_TOKEN`, a bearer token; otherwise 404)", "security": [], "responses": {"200": {"description": "text/plain exposition"}, "404": err("Metrics are not exposed to this caller")}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_in_the_document() {
        let doc = spec();
        let listed: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
            ["properties"]["code"]["enum"]
            .as_array()
            .expect("the Error schema lists its codes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for c in ErrorCode::ALL {
            assert!(
                listed.contains(&c.as_str()),
                "{} not in /openapi.json",
                c.as_str()
            );
        }
        assert_eq!(listed.len(), ErrorCode::ALL.len());
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
