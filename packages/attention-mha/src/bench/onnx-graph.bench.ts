// Just enough of the ONNX protobuf encoding to build a one-node model in code (ModelProto →
// GraphProto → NodeProto, ValueInfoProto with fixed shapes), so the benchmark can run
// onnxruntime's contrib attention operators without a model file or a protobuf dependency.
// Field numbers from onnx/onnx.proto.

type Bytes = number[];

function varint(out: Bytes, value: number): void {
  let v = BigInt(value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
}

function key(out: Bytes, field: number, wire: 0 | 2 | 5): void {
  varint(out, (field << 3) | wire);
}

function int(out: Bytes, field: number, value: number): void {
  key(out, field, 0);
  varint(out, value);
}

function bytes(out: Bytes, field: number, payload: Bytes | Uint8Array): void {
  key(out, field, 2);
  varint(out, payload.length);
  for (const b of payload) out.push(b);
}

function str(out: Bytes, field: number, s: string): void {
  bytes(out, field, new TextEncoder().encode(s));
}

function float(out: Bytes, field: number, value: number): void {
  key(out, field, 5);
  const buf = new Uint8Array(new Float32Array([value]).buffer);
  for (const b of buf) out.push(b);
}

function message(build: (m: Bytes) => void): Bytes {
  const m: Bytes = [];
  build(m);
  return m;
}

export type OnnxElemType = 'float32' | 'int32';
const ELEM_TYPE: Record<OnnxElemType, number> = { float32: 1, int32: 6 };

export interface OnnxValue {
  readonly name: string;
  readonly type: OnnxElemType;
  /** Fixed dims, or a name for a symbolic one; [] is a scalar. */
  readonly shape: readonly (number | string)[];
}

export type OnnxAttribute = { readonly name: string; readonly int: number } | { readonly name: string; readonly float: number };

export interface OnnxNode {
  readonly opType: string;
  readonly domain: string;
  /** '' marks an omitted optional input. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: readonly OnnxAttribute[];
}

function valueInfo(v: OnnxValue): Bytes {
  return message((m) => {
    str(m, 1, v.name);
    bytes(
      m,
      2, // TypeProto
      message((t) =>
        bytes(
          t,
          1, // tensor_type
          message((tt) => {
            int(tt, 1, ELEM_TYPE[v.type]);
            bytes(tt, 2, message((shape) => v.shape.forEach((d) => bytes(shape, 1, message((dim) => (typeof d === 'number' ? int(dim, 1, d) : str(dim, 2, d)))))));
          }),
        ),
      ),
    );
  });
}

function node(n: OnnxNode): Bytes {
  return message((m) => {
    n.inputs.forEach((i) => str(m, 1, i));
    n.outputs.forEach((o) => str(m, 2, o));
    str(m, 3, `${n.opType}_0`);
    str(m, 4, n.opType);
    for (const a of n.attributes) {
      bytes(
        m,
        5,
        message((attr) => {
          str(attr, 1, a.name);
          if ('int' in a) {
            int(attr, 3, a.int);
            int(attr, 20, 2); // AttributeProto.INT
          } else {
            float(attr, 2, a.float);
            int(attr, 20, 1); // AttributeProto.FLOAT
          }
        }),
      );
    }
    str(m, 7, n.domain);
  });
}

/** A serialized ModelProto with one node, opset 17 plus com.microsoft 1. */
export function oneNodeModel(n: OnnxNode, inputs: readonly OnnxValue[], outputs: readonly OnnxValue[]): Uint8Array {
  const model = message((m) => {
    int(m, 1, 9); // ir_version
    str(m, 2, 'attnkit-bench');
    bytes(
      m,
      7,
      message((g) => {
        bytes(g, 1, node(n));
        str(g, 2, 'attention');
        inputs.forEach((v) => bytes(g, 11, valueInfo(v)));
        outputs.forEach((v) => bytes(g, 12, valueInfo(v)));
      }),
    );
    bytes(m, 8, message((o) => int(o, 2, 17)));
    bytes(
      m,
      8,
      message((o) => {
        str(o, 1, 'com.microsoft');
        int(o, 2, 1);
      }),
    );
  });
  return Uint8Array.from(model);
}
