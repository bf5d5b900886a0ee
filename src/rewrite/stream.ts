// Writing a rewrite plan out: one pass over the input's sections in file order. Metadata sections are
// replaced by the plan's maps; page data, page maps and blobs are copied as they are (only their
// owner PID changes), except the few PAGEDATA sections that hold a patched page. The caller calls
// writer.finish().
import type { CryoImage } from '../core/reader.js';
import { Codec, PAGE_SIZE, SectionType, type SectionInfo } from '../core/format.js';
import { PageKind } from '../core/model.js';
import type { ImageWriter } from '../core/writer.js';
import type { MemoryPatch, RewritePlan } from './plan.js';

interface PlacedPatch {
  /** Offset in the PAGEDATA payload. */
  at: number;
  patch: MemoryPatch;
}

export async function writeRewrite(image: CryoImage, plan: RewritePlan, writer: ImageWriter): Promise<void> {
  const patchesBySection = placePatches(image, plan.patches);
  for (const section of image.sections) {
    const owner = section.owner === 0 ? 0 : plan.ownerMap(section.owner);
    switch (section.type) {
      case SectionType.IMAGE_META:
        await writer.addImageMeta(plan.meta);
        break;
      case SectionType.PROCESS: {
        const map = plan.processes.get(section.owner);
        if (!map) throw new Error(`rewrite: no plan for the PROCESS section of ${section.owner}`);
        await writer.addProcess(map);
        break;
      }
      default: {
        const patches = patchesBySection.get(section) ?? [];
        if (patches.length === 0 && section.codec !== Codec.RAW) {
          // A packed section (FORMAT §3.1) nothing patches: copied as stored, codec and CRC kept.
          await writer.addSection({ type: section.type, owner, key: section.key, codec: section.codec, rawLength: section.rawLength },
            await image.readStoredSection(section), { payloadCrc: section.payloadCrc });
          break;
        }
        // readSection checked the payload's CRC; an unpatched raw payload keeps it (no second pass).
        // A patched or decoded one is written raw with a new CRC.
        const payload = await image.readSection(section);
        for (const { at, patch } of patches) {
          new DataView(payload.buffer, payload.byteOffset).setInt32(at, patch.to, true);
        }
        await writer.addSection({ type: section.type, owner, key: section.key }, payload,
          patches.length || section.codec !== Codec.RAW ? {} : { payloadCrc: section.payloadCrc });
      }
    }
  }
}

/** Finds the PAGEDATA section and payload offset of every patch (all were checked to be stored). */
function placePatches(image: CryoImage, patches: MemoryPatch[]): Map<SectionInfo, PlacedPatch[]> {
  const placed = new Map<SectionInfo, PlacedPatch[]>();
  for (const patch of patches) {
    const process = image.process(patch.pid)!;
    const page = patch.address & ~BigInt(PAGE_SIZE - 1);
    const run = process.pageMap.find(
      (e) => e.kind === PageKind.DATA && page >= e.vaddr && page < e.vaddr + BigInt(e.pageCount * PAGE_SIZE),
    );
    if (!run) throw new Error(`rewrite: page 0x${page.toString(16)} of ${patch.pid} is not stored`);
    const storeIndex = run.storeIndex + Number((page - run.vaddr) / BigInt(PAGE_SIZE));
    const section = image.sections.find(
      (s) => s.type === SectionType.PAGEDATA && s.owner === patch.pid &&
        Number(s.key) <= storeIndex && storeIndex < Number(s.key) + s.rawLength / PAGE_SIZE,
    );
    if (!section) throw new Error(`rewrite: store page ${storeIndex} of ${patch.pid} has no PAGEDATA section`);
    const at = (storeIndex - Number(section.key)) * PAGE_SIZE + Number(patch.address - page);
    const list = placed.get(section) ?? [];
    list.push({ at, patch });
    placed.set(section, list);
  }
  return placed;
}
