// The part of ONNX's protobuf schema that an exported flowtensor model uses, written out from the
// public onnx.proto field numbers (proto2, as onnx.proto itself: a field that is set is written even
// when it is zero, e.g. an attribute `layout = 0`). protobufjs builds the types from this text at run
// time, as for the TensorBoard event files (src/tensorboard.ts): no generated code, no protoc step.
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto2";
package onnx;

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  optional string doc_string = 12;
}
message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  optional string doc_string = 13;
  optional AttributeType type = 20;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  optional string domain = 7;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
`;

// keepCase: snake_case field names as in onnx.proto
const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
export const ModelProto = root.lookupType('onnx.ModelProto');

/** TensorProto.DataType values used here. */
export const DT = { FLOAT: 1, INT64: 7 } as const;
/** AttributeProto.AttributeType values used here. */
export const AT = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7, STRINGS: 8 } as const;

export interface Tensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}
export type Attribute = { name: string; type: number; i?: number; f?: number; s?: Uint8Array; ints?: number[]; strings?: Uint8Array[] };
export interface Node {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute?: Attribute[];
}
export interface ValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
  doc_string?: string;
}
export interface Model {
  ir_version: number;
  producer_name: string;
  producer_version: string;
  model_version?: number;
  doc_string?: string;
  opset_import: { domain: string; version: number }[];
  graph: { name: string; node: Node[]; initializer: Tensor[]; input: ValueInfo[]; output: ValueInfo[]; doc_string?: string };
  metadata_props: { key: string; value: string }[];
}

export function encodeModel(m: Model): Uint8Array {
  const err = ModelProto.verify(m);
  if (err) throw new Error(`ONNX model: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(m)).finish();
}

/** The model back as plain objects (int64 as numbers, bytes as Buffers): for tests and checks. */
export function decodeModel(bytes: Uint8Array): Model {
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, bytes: Buffer, defaults: false, arrays: true }) as unknown as Model;
}

/** A float32 tensor initializer, little-endian raw bytes. */
export function floatTensor(name: string, dims: number[], data: Float32Array): Tensor {
  if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`ONNX tensor ${name}: ${data.length} values for shape [${dims}]`);
  const raw = new Uint8Array(data.length * 4);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
  return { name, dims, data_type: DT.FLOAT, raw_data: raw };
}

/** An int64 tensor initializer (shape constants, axes). */
export function int64Tensor(name: string, dims: number[], data: number[]): Tensor {
  const raw = new Uint8Array(data.length * 8);
  const dv = new DataView(raw.buffer);
  data.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
  return { name, dims, data_type: DT.INT64, raw_data: raw };
}

export const intAttr = (name: string, i: number): Attribute => ({ name, type: AT.INT, i });
export const intsAttr = (name: string, ints: number[]): Attribute => ({ name, type: AT.INTS, ints });
export const stringsAttr = (name: string, strings: string[]): Attribute => ({ name, type: AT.STRINGS, strings: strings.map((s) => Buffer.from(s)) });

/** A float32 tensor's type, each dimension a size or a symbolic name. */
export function floatInfo(name: string, dims: (number | string)[], doc?: string): ValueInfo {
  return { name, type: { tensor_type: { elem_type: DT.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } }, ...(doc ? { doc_string: doc } : {}) };
}
