import sharp from 'sharp';
import fs from 'node:fs';
const dir='/tmp/dl/images'; const files=fs.readdirSync(dir).slice(0,9600);
const bufs=files.map(f=>fs.readFileSync(dir+'/'+f));
const conc=+process.argv[2]||1; const inflight=+process.argv[3]||32; const S=+process.argv[4]||84;
sharp.concurrency(conc); sharp.cache(false);
let i=0; const t0=performance.now();
async function worker(){ while(i<bufs.length){ const b=bufs[i++]; let p=sharp(b).removeAlpha().toColourspace('srgb'); if(S!==84) p=p.resize(S,S,{kernel:'cubic',fit:'fill'}); const {data,info}=await p.raw().toBuffer({resolveWithObject:true}); if(data.length!==S*S*3) throw new Error('x'+info.width);} }
await Promise.all(Array.from({length:inflight},worker));
const dt=(performance.now()-t0)/1000; console.log(conc,inflight,S,(bufs.length/dt).toFixed(0),'img/s');
