import { CALLS_PER_NUMBER_CAP, type CallStanding, type NuisanceFlag, type NuisanceStore } from '../../policy/nuisance.js';

/** Nuisance flags and call counts for the embedded single-instance mode. */
export class MemoryNuisanceStore implements NuisanceStore {
  private readonly flags = new Map<string, NuisanceFlag>();
  private readonly calls = new Map<string, number[]>();

  async flag(flag: NuisanceFlag): Promise<void> {
    this.flags.set(flag.numberHash, flag);
  }

  async unflag(numberHash: string): Promise<boolean> {
    return this.flags.delete(numberHash);
  }

  async get(numberHash: string, now: Date): Promise<NuisanceFlag | null> {
    const flag = this.flags.get(numberHash);
    if (!flag) return null;
    if (Date.parse(flag.expiresAt) <= now.getTime()) {
      this.flags.delete(numberHash);
      return null;
    }
    return flag;
  }

  async list(now: Date, limit: number): Promise<NuisanceFlag[]> {
    for (const [hash, flag] of this.flags) if (Date.parse(flag.expiresAt) <= now.getTime()) this.flags.delete(hash);
    return [...this.flags.values()].sort((a, b) => b.flaggedAt.localeCompare(a.flaggedAt)).slice(0, limit);
  }

  async countCall(numberHash: string, at: Date, windowSeconds: number): Promise<CallStanding> {
    const kept = this.window(numberHash, at, windowSeconds);
    kept.push(at.getTime());
    if (kept.length > CALLS_PER_NUMBER_CAP) kept.splice(0, kept.length - CALLS_PER_NUMBER_CAP);
    this.calls.set(numberHash, kept);
    return { flag: await this.get(numberHash, at), recentCalls: kept.length };
  }

  async recentCalls(numberHash: string, at: Date, windowSeconds: number): Promise<number> {
    return this.window(numberHash, at, windowSeconds).length;
  }

  private window(numberHash: string, at: Date, windowSeconds: number): number[] {
    const since = at.getTime() - windowSeconds * 1000;
    const kept = (this.calls.get(numberHash) ?? []).filter((t) => t > since);
    if (kept.length === 0) this.calls.delete(numberHash);
    else this.calls.set(numberHash, kept);
    return kept;
  }
}
