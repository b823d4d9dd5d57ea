#!/usr/bin/env python3
"""An independent SMPP client (PyPI smpplib) against the Sairex SMPP server.

Usage: smpplib_client.py HOST PORT SYSTEM_ID PASSWORD
Binds with a wrong password (expects ESME_RINVPASWD), then as a transceiver; submits a GSM
message and a 3-part UCS-2 message (UDH, as smpplib splits it) asking for receipts; waits for
a delivery receipt for every id it was given; prints a JSON report; exits non-zero on any
failure.
"""
import json
import sys
import time

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm

HOST, PORT, SYSTEM_ID, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
GSM_TEXT = "Hello from smpplib"
UCS2_TEXT = "سلام، آپ کی فیس کی آخری تاریخ جمعہ ہے۔ " * 4

report = {"texts": {"923005550001": GSM_TEXT, "923005550002": UCS2_TEXT}}

bad = smpplib.client.Client(HOST, PORT, timeout=10)
bad.connect()
try:
    bad.bind_transceiver(system_id=SYSTEM_ID, password="wrong")
    sys.exit("bind with a wrong password succeeded")
except smpplib.exceptions.PDUError as e:
    report["bad_password_status"] = e.args[1]
bad.disconnect()

client = smpplib.client.Client(HOST, PORT, timeout=10)
sent_ids = []
receipts = {}


def on_sent(pdu):
    if pdu.status != 0:
        sys.exit("submit refused with status %d" % pdu.status)
    sent_ids.append(pdu.message_id.decode())


def on_received(pdu):
    rid = pdu.receipted_message_id
    if rid:
        receipts[rid.decode()] = {
            "text": pdu.short_message.decode(errors="replace"),
            "state": pdu.message_state,
        }
    return smpplib.consts.SMPP_ESME_ROK


client.set_message_sent_handler(on_sent)
client.set_message_received_handler(on_received)
client.connect()
client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)

submits = 0
for text, destination in ((GSM_TEXT, "923005550001"), (UCS2_TEXT, "923005550002")):
    parts, encoding, esm_class = smpplib.gsm.make_parts(text)
    for part in parts:
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
            source_addr="SMPPLIB",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            destination_addr=destination,
            short_message=part,
            data_coding=encoding,
            esm_class=esm_class,
            registered_delivery=True,
        )
        submits += 1
report["submits"] = submits

deadline = time.time() + 60
while time.time() < deadline and (
    len(sent_ids) < submits or any(i not in receipts for i in sent_ids)
):
    client.read_once()

report["ids"] = sent_ids
report["receipts"] = receipts
missing = [i for i in sent_ids if i not in receipts]
client.unbind()
client.disconnect()
print(json.dumps(report))
if len(sent_ids) != submits or missing:
    sys.exit("missing answers or receipts: %s" % missing)
