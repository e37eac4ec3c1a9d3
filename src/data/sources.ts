/**
 * The public datasets the project uses: one declaration per dataset (files, hashes, public source).
 * `make data` copies them from ../shared/data when present, else downloads them from the pinned
 * commit of their public repository; either way each file is checked against its sha256.
 */
import fs from 'node:fs';
import path from 'node:path';
import { copyVerified, downloadFile, fileMatches } from '../io/files';

export interface DatasetSource {
  name: string;
  license: string;
  /** Base URL of the pinned public copy; a file's URL is `${baseUrl}/${remotePath}`. */
  baseUrl: string;
  files: { name: string; remotePath: string; sha256: string }[];
}

const GITHUB_RAW = 'https://raw.githubusercontent.com';
/** The pinned commit of aws-samples/churn-prediction-with-text-and-interpretability the chat logs come from. */
const AWS_CHURN_COMMIT = '646dfcc72a838b4449bc4e314dfc67596a892652';

export const DATASETS: DatasetSource[] = [
  {
    name: 'banking77',
    license: 'CC-BY-4.0',
    baseUrl: `${GITHUB_RAW}/PolyAI-LDN/task-specific-datasets/57ec275d8078af65b7731c2a98be812d844a6d6b`,
    files: [
      {
        name: 'train.csv',
        remotePath: 'banking_data/train.csv',
        sha256: 'b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b',
      },
      {
        name: 'test.csv',
        remotePath: 'banking_data/test.csv',
        sha256: 'd12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d',
      },
      {
        name: 'categories.json',
        remotePath: 'banking_data/categories.json',
        sha256: '53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63',
      },
    ],
  },
  {
    name: 'aws-churn-chatlogs',
    license: 'MIT-0',
    baseUrl: `${GITHUB_RAW}/aws-samples/churn-prediction-with-text-and-interpretability/${AWS_CHURN_COMMIT}`,
    files: [
      {
        name: 'text.csv',
        remotePath: 'data/text.csv',
        sha256: 'a6c1c47e3c7f4607e2037ea52d1973b32228e65aa96104c4dc3a252172184d5c',
      },
    ],
  },
  {
    name: 'telco-churn',
    license: 'Apache-2.0',
    baseUrl: `${GITHUB_RAW}/IBM/telco-customer-churn-on-icp4d/d5371f5d83a446ad5673cbcca3b814b926491f8a`,
    files: [
      {
        name: 'Telco-Customer-Churn.csv',
        remotePath: 'data/Telco-Customer-Churn.csv',
        sha256: '16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91',
      },
    ],
  },
  {
    // NLU++ (Casanueva et al., NAACL 2022): banking and hotels queries written by other people than Banking77's, in
    // the authors' 20 folds. Used to measure models on traffic they were not trained on (banking: in-domain queries
    // of other writers; hotels: off-domain ones). Its modules are not mapped to the project's queues yet.
    name: 'nlupp',
    license: 'CC-BY-4.0',
    baseUrl: `${GITHUB_RAW}/PolyAI-LDN/task-specific-datasets/57ec275d8078af65b7731c2a98be812d844a6d6b`,
    files: (
      [
        ['banking/fold0.json', 'bc9544ba197f5f073d07beab056466997ad986077d1ee46b434a251568034d0c'],
        ['banking/fold1.json', 'ebe7cb30185e0884c9f6a20c8650636bb7ed0419d1a1a5608d63eb323f5df2ec'],
        ['banking/fold2.json', '9ce7cc6605cfa7dcb07be2b5f6ecb6cc075db5f344c998963a7a0be34727db99'],
        ['banking/fold3.json', 'caff1b2b46503f85ae0ea2add66498857b341c87e87fa3dfbd3e8f12ee092fcd'],
        ['banking/fold4.json', '2c5121f7bcdca72c5a790b6a5ab1de6e0d89f5e9c6038bfa36507942f91aae5e'],
        ['banking/fold5.json', 'fbc4252be25dfe5fd81b246eb51bcd9fccf509e43d29968832b99dcd0595449e'],
        ['banking/fold6.json', 'fc2cbe872188462202f0fa4abdc4ee3bb38df130530500cb29f0c58c7f130cf1'],
        ['banking/fold7.json', '3029b8f9364ce6fc5ea202dc3b5d00b89a678cc90e49be0b865ace4cd944cea9'],
        ['banking/fold8.json', '7c76964657343991ed2d2c874db11b679b35cbe9fbf1ab05259667c02fd87335'],
        ['banking/fold9.json', '2d26f835b622d2c8bf83f4f29ebfc2cf5b1615f9cf7082e341f2cd77fd5d6a89'],
        ['banking/fold10.json', 'a61de5477bd09ac0baa4152705be278f819de5ae60226c65c19d341b01330f6f'],
        ['banking/fold11.json', 'cc01ca2a90f3da8c0e9d3762e59d1a84329bd357e5e9f17f490108ce5450b3a6'],
        ['banking/fold12.json', 'd47c38523d56a9ffff0ffc1e4daa14339a6e42dfbf7b29ede030f1cc659dd612'],
        ['banking/fold13.json', 'cb4c26ebecc7e68b8be0fafb4a691c9199fe6bb1368f0b549d29c6a1d6438fd1'],
        ['banking/fold14.json', '2b5350380c0d13e9cdef211a02b7406d97be2a766081bdab9beba12035948b48'],
        ['banking/fold15.json', '48ab8cf2a87cadfa3be845de6071f91cf22089b6618c471eceb749e6c719739e'],
        ['banking/fold16.json', '29e3bce3fa74908b85ee8c595b17419ae8161414cd4eb682fc41a79abe93c2bc'],
        ['banking/fold17.json', '4bf5dfe9d5114ef0300f970ed4c473eb7a9090900223a01af018e6a3e2a17bee'],
        ['banking/fold18.json', 'f4f514ae92501dbe009ef639f229558d966eb63066f6273327558b51b9fcf69a'],
        ['banking/fold19.json', 'c24f0fb42c4714d27f8639351c22df75e714e1e3e2451032d73452e4faa3942c'],
        ['hotels/fold0.json', '16724351a44b5c8b32c84a827dcd8530f4d248c6fac4d309d88fd21245fca448'],
        ['hotels/fold1.json', '123aeb21f3c73a47ce7df75ff28ba2cd318c9782f1c779e75e8e9322a36e68e7'],
        ['hotels/fold2.json', '517732b73e40ac30993ec9ca7e7531ca2e7abac829258391961836dd7ebdc2d6'],
        ['hotels/fold3.json', '555561c4484df605b2d180f762559d013bc864b304a6619a172d582eff15f859'],
        ['hotels/fold4.json', 'a6c7459c085a09646a1c77de4c70a288076d2426a7f2f15c8838dc4e3d4ee9a6'],
        ['hotels/fold5.json', '489b91cb4132083fc975b85cce9774602e9aa7af46db2b7561884af17e281453'],
        ['hotels/fold6.json', '052e52bf41f87b24c5bbf246e871f6456b105230bd84a8f7f13ff65bedcc2cad'],
        ['hotels/fold7.json', 'aa7869f8031cd3caa94675cc92052afd8526cbaa81b400de665fb95ba4b62c6c'],
        ['hotels/fold8.json', '1d20d1b1b0ff349f33649d219b2359828977fd9663ba758e4e9e67672a0954a2'],
        ['hotels/fold9.json', '0346a8658c7e47750d7a8589cd8b3b3e22f8beed3074b6488daa4213f47b5966'],
        ['hotels/fold10.json', 'b5ed876c74026c5be1aa6ae3956134a89894e01baa410c1ded1e52e72750839e'],
        ['hotels/fold11.json', '582d1de5ac593226182b5e32c146750b6678a9d6198aef4c0cdfe9ad8b077161'],
        ['hotels/fold12.json', 'f36349037466f2cc01430fef6b39ffadb0d4222396c7beae028cf07f333f897a'],
        ['hotels/fold13.json', 'ee9773b91c2e37ea566b4f09687b6951a5c44d36e22292cead93eb221904e06a'],
        ['hotels/fold14.json', '722562aa47b087cbd432930064da2e080df0ada23000783a9493786125a22dad'],
        ['hotels/fold15.json', 'f2d34e8c75d1e49f29b905de61d6690ae6f85f4e040f6f72882e161a09e57c24'],
        ['hotels/fold16.json', 'dac95faf7ba946819714ec5e4e3014d0cf3e054634cc10f1ac9f7693a90280cb'],
        ['hotels/fold17.json', '3e0a95d9c8097d40d8919b5405938c0088a80926d262f03c9234fc93a20a5d33'],
        ['hotels/fold18.json', '1034017ae94f7eb50ecf2cfb4ef850c53e362506b69b02ee7c99f346eec16437'],
        ['hotels/fold19.json', 'b0140eecf03dd9e6cb251c1a4b42edff2f4ea2c74079a9988777ee7181ebb3e7'],
      ] as const
    ).map(([name, sha256]) => ({ name, remotePath: `nlupp/data/${name}`, sha256 })),
  },
];

export type FetchedFrom = 'present' | 'shared' | 'download';

export interface DatasetFetchReport {
  name: string;
  from: FetchedFrom;
  dir: string;
}

export interface FetchDataOptions {
  sharedDir: string;
  rawDir: string;
  /** Replaces the GitHub host in every source URL (a mirror, or a test server). */
  mirror?: string;
  datasets?: DatasetSource[];
}

function sourceUrl(ds: DatasetSource, remotePath: string, mirror?: string): string {
  const base = mirror ? ds.baseUrl.replace(GITHUB_RAW, mirror.replace(/\/+$/, '')) : ds.baseUrl;
  return `${base}/${remotePath}`;
}

/** Brings one dataset into rawDir/<name>/: already there, copied from sharedDir, or downloaded. */
export async function fetchDataset(ds: DatasetSource, opts: FetchDataOptions): Promise<DatasetFetchReport> {
  const dir = path.join(opts.rawDir, ds.name);
  const present = await Promise.all(ds.files.map((f) => fileMatches(path.join(dir, f.name), f.sha256)));
  if (present.every(Boolean)) return { name: ds.name, from: 'present', dir };

  const sharedDir = path.join(opts.sharedDir, ds.name);
  if (ds.files.every((f) => fs.existsSync(path.join(sharedDir, f.name)))) {
    for (const f of ds.files) await copyVerified(path.join(sharedDir, f.name), path.join(dir, f.name), f.sha256);
    // Provenance and licence travel with the data.
    for (const extra of ['PROVENANCE.md', 'SOURCE_LICENSE.txt']) {
      if (fs.existsSync(path.join(sharedDir, extra)))
        fs.copyFileSync(path.join(sharedDir, extra), path.join(dir, extra));
    }
    return { name: ds.name, from: 'shared', dir };
  }

  const failures: string[] = [];
  for (const f of ds.files) {
    const url = sourceUrl(ds, f.remotePath, opts.mirror);
    try {
      await downloadFile(url, path.join(dir, f.name), { sha256: f.sha256, timeoutMs: 120_000 });
    } catch (err) {
      const cause = (err as Error).cause;
      failures.push(`  ${url}: ${cause instanceof Error ? cause.message : (err as Error).message}`);
    }
  }
  if (failures.length > 0) {
    throw new Error(
      `Dataset "${ds.name}" is not in ${sharedDir} and could not be downloaded:\n${failures.join('\n')}\n` +
        `Fix: put the files (${ds.files.map((f) => f.name).join(', ')}) in ${sharedDir}, ` +
        'set SHARED_DATA_DIR to a folder that has them, ' +
        `or set DATA_MIRROR to a reachable copy of ${GITHUB_RAW}.`,
    );
  }
  fs.writeFileSync(
    path.join(dir, 'PROVENANCE.md'),
    `# ${ds.name}\n- Source: ${ds.baseUrl}\n- License: ${ds.license}\n` +
      `- Files: ${ds.files.map((f) => `${f.name} (sha256 ${f.sha256})`).join(', ')}\n`,
  );
  return { name: ds.name, from: 'download', dir };
}
