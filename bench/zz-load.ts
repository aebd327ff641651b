import { predictLoad } from './processes';
(async () => { const r = await predictLoad(() => `http://127.0.0.1:${process.argv[2]}`, ['a','b','c'], 5, 16); console.log(process.argv[3], r.rps, r.p50.toFixed(2)); })();
