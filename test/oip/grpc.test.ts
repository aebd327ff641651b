/**
 * The protocol's gRPC messages as pool and router read and write them (runtime/src/oip/grpc.ts, from
 * the .proto with protobufjs): fields as the .proto spells them, int64 as numbers, a oneof by its
 * name, unset fields at their defaults, and an array refused rather than sent as an empty message.
 */
import { healthService, inferenceService, methodPath } from '@botshard/runtime/oip/grpc';

describe('gRPC service definitions', () => {
  const infer = inferenceService().ModelInfer;

  it('names every method of the protocol by its HTTP/2 path, unary', () => {
    expect(Object.keys(inferenceService()).sort()).toEqual(['ModelInfer', 'ModelMetadata', 'ModelReady', 'ServerLive', 'ServerMetadata', 'ServerReady']);
    for (const [name, method] of Object.entries(inferenceService())) {
      expect([method.path, method.requestStream, method.responseStream, method.originalName]).toEqual([methodPath(name), false, false, name[0].toLowerCase() + name.slice(1)]);
    }
    expect(healthService().service.Watch).toMatchObject({ path: '/grpc.health.v1.Health/Watch', responseStream: true });
  });

  it('a request comes back as written: snake_case fields, int64 as numbers, the oneof named, bytes as Buffers', () => {
    const request = {
      model_name: 'bot-1',
      id: 'r1',
      parameters: { priority: { int64_param: 3 } },
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2, 1], parameters: {} }],
      raw_input_contents: [Buffer.from('abc')],
    };
    const bytes = infer.requestSerialize(request);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    const back = infer.requestDeserialize(bytes) as any;
    expect(back).toMatchObject({ model_name: 'bot-1', model_version: '', id: 'r1', outputs: [] });
    expect(back.parameters.priority).toEqual({ int64_param: 3, parameter_choice: 'int64_param' });
    expect(back.inputs[0].shape).toEqual([2, 1]);
    expect(typeof back.inputs[0].shape[0]).toBe('number');
    expect(Buffer.from(back.raw_input_contents[0]).toString()).toBe('abc');
  });

  it('refuses to serialize an array, naming the message type', () => {
    expect(() => infer.requestSerialize([] as unknown as object)).toThrow(/expected object with ModelInferRequest structure, got array/);
  });
});
