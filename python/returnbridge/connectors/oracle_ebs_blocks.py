"""The PL/SQL blocks the EBS connector sends: the only place SQL text is made; payload values only become binds."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from returnbridge.connectors.oracle_ebs_config import (
    ACTION_FIELDS,
    CM_LINE_FIELDS,
    CM_PARAMS,
    ERP,
    HEADER_FIELDS,
    IDENTIFIER,
    LINE_FIELDS,
    LOT_SERIAL_FIELDS,
    OracleEbsConfig,
)
from returnbridge.errors import (
    PermanentErpError,
)

# -- block builders (the only place SQL text is made; payload values only ever become binds) ------------


class Block:
    """An anonymous PL/SQL block, its input binds and the names of its OUT binds."""

    def __init__(self, sql: str, binds: dict[str, Any], outputs: tuple[str, ...]) -> None:
        self.sql = sql
        self.binds = binds
        self.outputs = outputs


def _bind_value(kind: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    if kind == "n":
        if isinstance(value, bool):
            raise PermanentErpError(f"{where} must be a number, got {value!r}", erp=ERP, code="PAYLOAD")
        try:
            number = Decimal(str(value)) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            raise PermanentErpError(
                f"{where} must be a number, got {value!r}", erp=ERP, code="PAYLOAD"
            ) from None
        if not number.is_finite():
            raise PermanentErpError(f"{where} must be a finite number", erp=ERP, code="PAYLOAD")
        return number
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
        raise PermanentErpError(
            f"{where} must be a string, got {type(value).__name__}", erp=ERP, code="PAYLOAD"
        )
    text = str(value)
    if len(text) > kind:
        raise PermanentErpError(f"{where} is longer than {kind} characters", erp=ERP, code="PAYLOAD")
    return text


def _assign(
    lines: list[str],
    binds: dict[str, Any],
    target: str,
    prefix: str,
    record: Any,
    spec: dict[str, Any],
    where: str,
) -> None:
    if not isinstance(record, dict):
        raise PermanentErpError(f"{where} must be an object", erp=ERP, code="PAYLOAD")
    for name, value in record.items():
        key = str(name).lower()
        if key not in spec or not IDENTIFIER.match(key):
            raise PermanentErpError(
                f"{where}: unknown field {name!r}; allowed: {', '.join(sorted(spec))}",
                erp=ERP,
                code="PAYLOAD",
            )
        bind = f"{prefix}{key}"
        binds[bind] = _bind_value(spec[key], value, f"{where}.{key}")
        lines.append(f"  {target}.{key} := :{bind};")


def _init_lines(config: OracleEbsConfig, binds: dict[str, Any], org_bind: str) -> list[str]:
    lines = []
    if (
        config.apps_user_id is not None
        and config.apps_resp_id is not None
        and config.apps_resp_appl_id is not None
    ):
        binds.update(
            {
                "apps_user_id": config.apps_user_id,
                "apps_resp_id": config.apps_resp_id,
                "apps_resp_appl_id": config.apps_resp_appl_id,
            }
        )
        lines.append("  FND_GLOBAL.APPS_INITIALIZE(:apps_user_id, :apps_resp_id, :apps_resp_appl_id);")
    lines.append(f"  MO_GLOBAL.SET_POLICY_CONTEXT('S', :{org_bind});")
    return lines


_MESSAGE_LOOP = """  FOR i IN 1 .. NVL(l_msg_count, 0) LOOP
    l_messages := SUBSTR(l_messages || {pkg}.GET(p_msg_index => i, p_encoded => 'F') || CHR(10), 1, 32000);
  END LOOP;
  :x_messages := l_messages;"""


def build_rma_block(payload: dict[str, Any], reference: str, config: OracleEbsConfig) -> Block:
    """The OE_ORDER_PUB.PROCESS_ORDER block for an RMA payload (keys validated, values bound)."""
    unknown = set(payload) - {"p_header_rec", "p_line_tbl", "p_lot_serial_tbl", "p_action_request_tbl"}
    if unknown:
        raise PermanentErpError(
            f"unknown RMA payload keys: {', '.join(sorted(unknown))}", erp=ERP, code="PAYLOAD"
        )
    header = dict(payload.get("p_header_rec") or {})
    header["orig_sys_document_ref"] = reference
    if header.get("org_id") is None:
        if config.default_org_id is None:
            raise PermanentErpError(
                "p_header_rec.org_id is required (or set default_org_id)", erp=ERP, code="PAYLOAD"
            )
        header["org_id"] = config.default_org_id
    line_tbl = payload.get("p_line_tbl") or []
    lot_tbl = payload.get("p_lot_serial_tbl") or []
    actions = list(payload.get("p_action_request_tbl") or [])
    if not isinstance(line_tbl, list) or not line_tbl:
        raise PermanentErpError("p_line_tbl needs at least one line", erp=ERP, code="PAYLOAD")
    if not isinstance(lot_tbl, list) or not isinstance(actions, list):
        raise PermanentErpError(
            "p_lot_serial_tbl and p_action_request_tbl must be lists", erp=ERP, code="PAYLOAD"
        )
    if config.book_orders and not any(
        isinstance(a, dict) and a.get("request_type") == "BOOK_ORDER" for a in actions
    ):
        actions.append({"request_type": "BOOK_ORDER", "entity_code": "HEADER"})
    binds: dict[str, Any] = {}
    body: list[str] = []
    _assign(body, binds, "l_header_rec", "h_", header, HEADER_FIELDS, "p_header_rec")
    binds["policy_org_id"] = binds["h_org_id"]
    body.append("  l_header_rec.operation := OE_GLOBALS.G_OPR_CREATE;")
    for i, line in enumerate(line_tbl, start=1):
        body.append(f"  l_line_tbl({i}) := OE_ORDER_PUB.G_MISS_LINE_REC;")
        body.append(f"  l_line_tbl({i}).operation := OE_GLOBALS.G_OPR_CREATE;")
        _assign(body, binds, f"l_line_tbl({i})", f"l{i}_", line, LINE_FIELDS, f"p_line_tbl[{i - 1}]")
    for i, lot in enumerate(lot_tbl, start=1):
        body.append(f"  l_lot_serial_tbl({i}) := OE_ORDER_PUB.G_MISS_LOT_SERIAL_REC;")
        body.append(f"  l_lot_serial_tbl({i}).operation := OE_GLOBALS.G_OPR_CREATE;")
        _assign(
            body,
            binds,
            f"l_lot_serial_tbl({i})",
            f"s{i}_",
            lot,
            LOT_SERIAL_FIELDS,
            f"p_lot_serial_tbl[{i - 1}]",
        )
    for i, action in enumerate(actions, start=1):
        body.append(f"  l_action_request_tbl({i}) := OE_ORDER_PUB.G_MISS_REQUEST_REC;")
        _assign(
            body,
            binds,
            f"l_action_request_tbl({i})",
            f"a{i}_",
            action,
            ACTION_FIELDS,
            f"p_action_request_tbl[{i - 1}]",
        )
    sql = "\n".join(
        [
            "DECLARE",
            "  l_header_rec OE_ORDER_PUB.Header_Rec_Type := OE_ORDER_PUB.G_MISS_HEADER_REC;",
            "  l_line_tbl OE_ORDER_PUB.Line_Tbl_Type;",
            "  l_lot_serial_tbl OE_ORDER_PUB.Lot_Serial_Tbl_Type;",
            "  l_action_request_tbl OE_ORDER_PUB.Request_Tbl_Type;",
            "  x_header_rec OE_ORDER_PUB.Header_Rec_Type;",
            "  x_header_val_rec OE_ORDER_PUB.Header_Val_Rec_Type;",
            "  x_header_adj_tbl OE_ORDER_PUB.Header_Adj_Tbl_Type;",
            "  x_header_adj_val_tbl OE_ORDER_PUB.Header_Adj_Val_Tbl_Type;",
            "  x_header_price_att_tbl OE_ORDER_PUB.Header_Price_Att_Tbl_Type;",
            "  x_header_adj_att_tbl OE_ORDER_PUB.Header_Adj_Att_Tbl_Type;",
            "  x_header_adj_assoc_tbl OE_ORDER_PUB.Header_Adj_Assoc_Tbl_Type;",
            "  x_header_scredit_tbl OE_ORDER_PUB.Header_Scredit_Tbl_Type;",
            "  x_header_scredit_val_tbl OE_ORDER_PUB.Header_Scredit_Val_Tbl_Type;",
            "  x_line_tbl OE_ORDER_PUB.Line_Tbl_Type;",
            "  x_line_val_tbl OE_ORDER_PUB.Line_Val_Tbl_Type;",
            "  x_line_adj_tbl OE_ORDER_PUB.Line_Adj_Tbl_Type;",
            "  x_line_adj_val_tbl OE_ORDER_PUB.Line_Adj_Val_Tbl_Type;",
            "  x_line_price_att_tbl OE_ORDER_PUB.Line_Price_Att_Tbl_Type;",
            "  x_line_adj_att_tbl OE_ORDER_PUB.Line_Adj_Att_Tbl_Type;",
            "  x_line_adj_assoc_tbl OE_ORDER_PUB.Line_Adj_Assoc_Tbl_Type;",
            "  x_line_scredit_tbl OE_ORDER_PUB.Line_Scredit_Tbl_Type;",
            "  x_line_scredit_val_tbl OE_ORDER_PUB.Line_Scredit_Val_Tbl_Type;",
            "  x_lot_serial_tbl OE_ORDER_PUB.Lot_Serial_Tbl_Type;",
            "  x_lot_serial_val_tbl OE_ORDER_PUB.Lot_Serial_Val_Tbl_Type;",
            "  x_action_request_tbl OE_ORDER_PUB.Request_Tbl_Type;",
            "  l_msg_count NUMBER;",
            "  l_messages VARCHAR2(32767);",
            "BEGIN",
            *_init_lines(config, binds, "policy_org_id"),
            *body,
            "  OE_ORDER_PUB.PROCESS_ORDER(",
            "    p_api_version_number => 1.0,",
            "    p_init_msg_list => FND_API.G_TRUE,",
            "    p_return_values => FND_API.G_FALSE,",
            "    p_action_commit => FND_API.G_FALSE,",
            "    x_return_status => :x_return_status,",
            "    x_msg_count => :x_msg_count,",
            "    x_msg_data => :x_msg_data,",
            "    p_header_rec => l_header_rec,",
            "    p_line_tbl => l_line_tbl,",
            "    p_lot_serial_tbl => l_lot_serial_tbl,",
            "    p_action_request_tbl => l_action_request_tbl,",
            "    x_header_rec => x_header_rec, x_header_val_rec => x_header_val_rec,",
            "    x_header_adj_tbl => x_header_adj_tbl, x_header_adj_val_tbl => x_header_adj_val_tbl,",
            "    x_header_price_att_tbl => x_header_price_att_tbl, x_header_adj_att_tbl => x_header_adj_att_tbl,",
            "    x_header_adj_assoc_tbl => x_header_adj_assoc_tbl, x_header_scredit_tbl => x_header_scredit_tbl,",
            "    x_header_scredit_val_tbl => x_header_scredit_val_tbl, x_line_tbl => x_line_tbl,",
            "    x_line_val_tbl => x_line_val_tbl, x_line_adj_tbl => x_line_adj_tbl,",
            "    x_line_adj_val_tbl => x_line_adj_val_tbl, x_line_price_att_tbl => x_line_price_att_tbl,",
            "    x_line_adj_att_tbl => x_line_adj_att_tbl, x_line_adj_assoc_tbl => x_line_adj_assoc_tbl,",
            "    x_line_scredit_tbl => x_line_scredit_tbl, x_line_scredit_val_tbl => x_line_scredit_val_tbl,",
            "    x_lot_serial_tbl => x_lot_serial_tbl, x_lot_serial_val_tbl => x_lot_serial_val_tbl,",
            "    x_action_request_tbl => x_action_request_tbl);",
            "  l_msg_count := :x_msg_count;",
            _MESSAGE_LOOP.format(pkg="OE_MSG_PUB"),
            "  :x_header_id := x_header_rec.header_id;",
            "  :x_order_number := x_header_rec.order_number;",
            "  :x_flow_status_code := x_header_rec.flow_status_code;",
            "END;",
        ]
    )
    outputs = (
        "x_return_status",
        "x_msg_count",
        "x_msg_data",
        "x_messages",
        "x_header_id",
        "x_order_number",
        "x_flow_status_code",
    )
    return Block(sql, binds, outputs)


def build_credit_memo_block(payload: dict[str, Any], reference: str, config: OracleEbsConfig) -> Block:
    """The AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST block (reference in DFF attribute15)."""
    params = {k: v for k, v in payload.items() if k not in ("cm_line_tbl", "p_cm_line_tbl")}
    lines = payload.get("cm_line_tbl", payload.get("p_cm_line_tbl")) or []
    if not isinstance(lines, list):
        raise PermanentErpError("cm_line_tbl must be a list", erp=ERP, code="PAYLOAD")
    if params.get("p_org_id") is None:
        if config.default_org_id is None:
            raise PermanentErpError("p_org_id is required (or set default_org_id)", erp=ERP, code="PAYLOAD")
        params["p_org_id"] = config.default_org_id
    if params.get("p_customer_trx_id") is None:
        raise PermanentErpError("p_customer_trx_id is required", erp=ERP, code="PAYLOAD")
    binds: dict[str, Any] = {}
    args: list[str] = []
    for name, value in params.items():
        key = str(name).lower()
        if key not in CM_PARAMS or not IDENTIFIER.match(key):
            raise PermanentErpError(
                f"unknown credit memo parameter {name!r}; allowed: {', '.join(sorted(CM_PARAMS))}",
                erp=ERP,
                code="PAYLOAD",
            )
        binds[key] = _bind_value(CM_PARAMS[key], value, key)
        args.append(f"    {key} => :{key},")
    body: list[str] = []
    for i, line in enumerate(lines, start=1):
        _assign(body, binds, f"l_cm_line_tbl({i})", f"c{i}_", line, CM_LINE_FIELDS, f"cm_line_tbl[{i - 1}]")
    binds["attr_ref"] = reference
    body.append("  l_attr_rec.attribute15 := :attr_ref;")
    sql = "\n".join(
        [
            "DECLARE",
            "  l_cm_line_tbl AR_CREDIT_MEMO_API_PUB.Cm_Line_Tbl_Type_Cover%TYPE;",
            "  l_attr_rec ARW_CMREQ_COVER.Pq_Attribute_Rec_Type;",
            "  l_msg_count NUMBER;",
            "  l_messages VARCHAR2(32767);",
            "BEGIN",
            *_init_lines(config, binds, "p_org_id"),
            *body,
            "  AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST(",
            "    p_api_version => 1.0,",
            "    p_init_msg_list => FND_API.G_TRUE,",
            "    p_commit => FND_API.G_FALSE,",
            *args,
            "    p_cm_line_tbl => l_cm_line_tbl,",
            "    p_attribute_rec => l_attr_rec,",
            "    x_return_status => :x_return_status,",
            "    x_msg_count => :x_msg_count,",
            "    x_msg_data => :x_msg_data,",
            "    x_request_id => :x_request_id);",
            "  l_msg_count := :x_msg_count;",
            _MESSAGE_LOOP.format(pkg="FND_MSG_PUB"),
            "END;",
        ]
    )
    return Block(sql, binds, ("x_return_status", "x_msg_count", "x_msg_data", "x_messages", "x_request_id"))
