"""python-alipay-sdk (PyPI, fzlee, unchanged) against the zhifu sandbox.

precreate -> buyer pays (control API) -> query TRADE_SUCCESS with the right
amounts -> partial refund -> refund query -> full refund -> TRADE_CLOSED;
close and cancel on other trades; the SDK's own response verification is on
(alipay_public_key_string = the sandbox key) and its ``verify`` accepts every
notification the sandbox delivers.

Run: ZHIFU_BIN=path/to/zhifu python -m unittest -v test_sandbox
"""
import json
import os
import re
import subprocess
import threading
import time
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from alipay import AliPay
from alipay.exceptions import AliPayException
from Cryptodome.PublicKey import RSA

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "../../../.."))
ZHIFU = os.environ.get("ZHIFU_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target"), "debug", "zhifu")


def pem_public(base64_key):
    body = "\n".join(base64_key[i:i + 64] for i in range(0, len(base64_key), 64))
    return "-----BEGIN PUBLIC KEY-----\n" + body + "\n-----END PUBLIC KEY-----\n"


class Sandbox:
    """The real `zhifu sandbox` binary on a free port."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [ZHIFU, "sandbox", "--port", "0", "--time-scale", "0.001"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = ""
        while "Alipay public key:" not in out:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("zhifu sandbox exited: " + self.proc.stderr.read())
            out += line
        self.gateway = re.search(r"Gateway:\s+(\S+)", out).group(1)
        self.base = self.gateway[: -len("/gateway.do")]
        self.alipay_public_key = re.search(r"Alipay public key:\s+(\S+)", out).group(1)

    def api(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


class Receiver:
    """A merchant notify endpoint that answers `success` and keeps the forms."""

    def __init__(self):
        self.hits = []
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                with outer.cond:
                    outer.hits.append(body)
                    outer.cond.notify_all()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"success")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/notify" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.hits) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("only %d of %d notifications" % (len(self.hits), n))
                self.cond.wait(left)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class OfficialPythonSdk(unittest.TestCase):
    def setUp(self):
        self.sb = Sandbox()
        self.addCleanup(self.sb.stop)
        self.rx = Receiver()
        self.addCleanup(self.rx.stop)
        key = RSA.generate(2048)
        app = self.sb.api("POST", "/sandbox/api/apps",
                          {"app_public_key": key.publickey().export_key().decode()})
        self.app_id = app["app_id"]
        self.seller_id = app["seller_id"]
        self.alipay = AliPay(
            appid=self.app_id,
            app_notify_url=None,
            app_private_key_string=key.export_key().decode(),
            alipay_public_key_string=pem_public(self.sb.alipay_public_key),
            sign_type="RSA2",
        )
        # The SDK only knows Alipay's hosts; point it at the sandbox.
        self.alipay._gateway = self.sb.gateway

    def test_journey(self):
        a = self.alipay
        out = "PY%d" % int(time.time() * 1000)
        pre = a.api_alipay_trade_precreate(
            subject="测试 tea", out_trade_no=out, total_amount="66.00", notify_url=self.rx.url)
        self.assertEqual(pre["code"], "10000")
        self.assertIn("/sandbox/scan/", pre["qr_code"])

        not_yet = a.api_alipay_trade_query(out_trade_no=out)
        self.assertEqual(not_yet["sub_code"], "ACQ.TRADE_NOT_EXIST")

        self.sb.api("POST", "/sandbox/api/trades/pay", {"out_trade_no": out})
        q = a.api_alipay_trade_query(out_trade_no=out)
        self.assertEqual(q["trade_status"], "TRADE_SUCCESS")
        self.assertEqual(q["total_amount"], "66.00")
        self.assertEqual(q["buyer_pay_amount"], "66.00")
        self.assertEqual(q["receipt_amount"], "66.00")

        r1 = a.api_alipay_trade_refund(refund_amount="6.00", out_trade_no=out, out_request_no="P1")
        self.assertEqual((r1["code"], r1["fund_change"], r1["refund_fee"]), ("10000", "Y", "6.00"))
        rq = a.api_alipay_trade_fastpay_refund_query(out_request_no="P1", out_trade_no=out)
        self.assertEqual(rq["refund_status"], "REFUND_SUCCESS")
        self.assertEqual(rq["refund_amount"], "6.00")
        r2 = a.api_alipay_trade_refund(refund_amount="60.00", out_trade_no=out, out_request_no="P2")
        self.assertEqual(r2["refund_fee"], "66.00")
        self.assertEqual(a.api_alipay_trade_query(out_trade_no=out)["trade_status"], "TRADE_CLOSED")

        c = out + "C"
        created = a.api_alipay_trade_create(
            subject="close me", out_trade_no=c, total_amount="1.00", buyer_id="2088102146225135")
        self.assertEqual(created["code"], "10000")
        closed = a.api_alipay_trade_close(out_trade_no=c)
        self.assertEqual(closed["trade_no"], created["trade_no"])
        self.assertEqual(a.api_alipay_trade_query(out_trade_no=c)["trade_status"], "TRADE_CLOSED")

        k = out + "K"
        a.api_alipay_trade_precreate(subject="cancel me", out_trade_no=k, total_amount="2.00")
        self.sb.api("POST", "/sandbox/api/trades/pay", {"out_trade_no": k, "app_id": self.app_id})
        self.assertEqual(a.api_alipay_trade_cancel(out_trade_no=k)["action"], "refund")
        self.assertEqual(a.api_alipay_trade_query(out_trade_no=k)["trade_status"], "TRADE_CLOSED")

        # Barcode pay with the sandbox's documented test codes.
        paid = a.api_alipay_trade_pay(
            out_trade_no=out + "B", scene="bar_code", auth_code="281234567890123456",
            subject="barcode", total_amount="3.00")
        self.assertEqual(paid["code"], "10000")

        # Notifications: paid, then the partial refund. Every one verifies.
        self.rx.wait_for(2)
        notes = [dict(parse_qsl(h, keep_blank_values=True)) for h in self.rx.hits]
        for n in notes:
            for value in n.values():
                self.assertNotEqual(value, "")
            sign = n.pop("sign")
            self.assertTrue(a.verify(dict(n), sign), n)
            self.assertEqual(n["app_id"], self.app_id)
            self.assertEqual(n["seller_id"], self.seller_id)
        self.assertEqual(notes[0]["trade_status"], "TRADE_SUCCESS")
        self.assertEqual(notes[0]["total_amount"], "66.00")
        self.assertEqual(notes[1]["refund_fee"], "6.00")
        # A changed amount no longer verifies.
        forged = dict(notes[0], total_amount="0.01")
        forged.pop("sign_type", None)
        self.assertFalse(a.verify(forged, dict(parse_qsl(self.rx.hits[0]))["sign"]))

    def test_unknown_app_is_refused_unsigned(self):
        self.alipay._appid = "2021000000000000"
        with self.assertRaises(AliPayException) as e:
            self.alipay.api_alipay_trade_query(out_trade_no="X")
        self.assertIn("isv.invalid-app-id", str(e.exception))


if __name__ == "__main__":
    unittest.main()
