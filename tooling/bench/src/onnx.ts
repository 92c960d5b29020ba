// A one-node ONNX model written as protobuf bytes, so onnxruntime-node can be measured on
// exactly one operator without downloading a model. Only the fields ONNX requires are written:
// ModelProto { ir_version, opset_import, graph { node, input, output } }.

/** Protobuf wire writer: varints and length-delimited fields, enough for ONNX's messages. */
class Proto {
  readonly #bytes: number[] = [];

  varint(field: number, value: number): this {
    this.#key(field, 0);
    this.#varint(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, message: Proto): this {
    return this.bytes(field, message.toBytes());
  }

  bytes(field: number, value: Uint8Array): this {
    this.#key(field, 2);
    this.#varint(value.length);
    for (const b of value) this.#bytes.push(b);
    return this;
  }

  toBytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  #key(field: number, wireType: number): void {
    this.#varint(field * 8 + wireType);
  }

  #varint(value: number): void {
    let v = value;
    while (v >= 0x80) {
      this.#bytes.push((v % 0x80) + 0x80);
      v = Math.floor(v / 0x80);
    }
    this.#bytes.push(v);
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTRIBUTE_INT = 2; // AttributeProto.AttributeType.INT

/** ValueInfoProto { name, type { tensor_type { elem_type: FLOAT, shape { dim { dim_value } } } } } */
function valueInfo(name: string, shape: readonly number[]): Proto {
  const dims = new Proto();
  for (const d of shape) dims.message(1, new Proto().varint(1, d));
  const tensorType = new Proto().varint(1, FLOAT).message(2, dims);
  return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
}

export interface OnnxNode {
  readonly opType: string;
  readonly inputs: readonly { readonly name: string; readonly shape: readonly number[] }[];
  readonly output: { readonly name: string; readonly shape: readonly number[] };
  readonly intAttributes?: Readonly<Record<string, number>>;
}

/** The bytes of a model with one node (opset 13, IR version 8). */
export function oneNodeModel(node: OnnxNode): Uint8Array {
  const n = new Proto();
  for (const input of node.inputs) n.string(1, input.name);
  n.string(2, node.output.name).string(3, `${node.opType}_0`).string(4, node.opType);
  for (const [name, value] of Object.entries(node.intAttributes ?? {})) {
    // non-negative only: a negative int64 is a 10-byte varint this small writer does not emit
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`onnx attribute ${name}: a non-negative integer expected, got ${value}`);
    n.message(5, new Proto().string(1, name).varint(3, value).varint(20, ATTRIBUTE_INT));
  }
  const graph = new Proto().message(1, n).string(2, `attnkit_${node.opType.toLowerCase()}`);
  for (const input of node.inputs) graph.message(11, valueInfo(input.name, input.shape));
  graph.message(12, valueInfo(node.output.name, node.output.shape));
  return new Proto()
    .varint(1, 8)
    .string(2, 'attnkit-bench')
    .message(7, graph)
    .message(8, new Proto().string(1, '').varint(2, 13))
    .toBytes();
}
