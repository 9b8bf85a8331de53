// A CallControl test peer: records every command the service sends and emits the switch events a
// real driver would, as a script says. It stands in for a switch only in tests of the transfer
// service; the real drivers are tested against protocol peers built from recorded transcripts.
import { EventEmitter } from 'node:events';
import type { TargetFailure } from '../../src/domain/transfer.js';
import type { CallControl, CallControlEvent, InFlightLegs, PlaceCallRequest, SwitchStatus } from '../../src/ports.js';

export type Command =
  | { type: 'placeCall'; request: PlaceCallRequest; at: bigint }
  | { type: 'bridgeToTarget'; transferId: string; citizenLegId: string; targetLegId: string }
  | { type: 'joinConference'; transferId: string; targetLegId: string }
  | { type: 'releaseAgent'; transferId: string }
  | { type: 'hangUp'; transferId: string; legId: string; cause: string }
  | { type: 'returnToAgent'; transferId: string; reason: string }
  | { type: 'reconcile'; transfers: readonly InFlightLegs[] };

/** What the far side does with each placed call, trunk by trunk. */
export type Answer = 'answer' | 'ring-only' | { fail: TargetFailure; cause: string };

export class TestCallControl implements CallControl {
  readonly commands: Command[] = [];
  /**
   * Off in benchmarks: a switch does not keep what it was sent, and a log of thousands of commands
   * (each with its placed call's ticket) would be copied by every young collection of the service it
   * measures. onPlaceCall still runs.
   */
  keepsCommands = true;
  private readonly emitter = new EventEmitter().setMaxListeners(0);
  private state: SwitchStatus['state'] = 'connected';
  /** Per trunk name, how the far side answers; default answers. */
  answers = new Map<string, Answer>();
  /** Delay before the far side's events, to let tests act while a call rings. */
  eventDelayMs = 0;
  placeCallError: (Error & { failure?: TargetFailure }) | null = null;
  /** Runs as the command arrives, before the far side does anything: what a switch would see then. */
  onPlaceCall: ((request: PlaceCallRequest) => Promise<void>) | null = null;
  /** The switch's own trunk names per desk (as the SIP edge has); a desk not listed uses the directory's. */
  trunks: Readonly<Record<string, readonly string[]>> | null = null;

  constructor(
    readonly switchId = 'test-switch',
    private readonly desk = '12345',
  ) {}

  private record(command: Command): void {
    if (this.keepsCommands) this.commands.push(command);
  }

  status(): SwitchStatus {
    return { switchId: this.switchId, kind: 'test-peer', desk: this.desk, state: this.state };
  }

  setState(state: SwitchStatus['state']): void {
    this.state = state;
    this.emitter.emit('status', this.status());
  }

  trunksFor(desk: string): readonly string[] | undefined {
    return this.trunks?.[desk];
  }

  async placeCall(request: PlaceCallRequest): Promise<void> {
    this.record({ type: 'placeCall', request, at: process.hrtime.bigint() });
    if (this.onPlaceCall) await this.onPlaceCall(request);
    if (this.placeCallError) throw this.placeCallError;
    const answer = this.answers.get(request.target.trunk) ?? 'answer';
    const { transferId, legId } = request;
    this.later(() => {
      this.emit({ type: 'target-ringing', transferId, legId });
      if (answer === 'answer') this.emit({ type: 'target-answered', transferId, legId });
      else if (answer !== 'ring-only') this.emit({ type: 'target-failed', transferId, legId, failure: answer.fail, cause: answer.cause });
    });
  }

  async bridgeToTarget(legs: { transferId: string; citizenLegId: string; targetLegId: string }): Promise<void> {
    this.record({ type: 'bridgeToTarget', ...legs });
    this.later(() => this.emit({ type: 'bridged', transferId: legs.transferId }));
  }

  async joinConference(legs: { transferId: string; targetLegId: string }): Promise<void> {
    this.record({ type: 'joinConference', transferId: legs.transferId, targetLegId: legs.targetLegId });
    this.later(() => this.emit({ type: 'conference-joined', transferId: legs.transferId }));
  }

  async releaseAgent(legs: { transferId: string }): Promise<void> {
    this.record({ type: 'releaseAgent', transferId: legs.transferId });
    this.later(() => this.emit({ type: 'party-left', transferId: legs.transferId, party: 'agent', cause: 'NORMAL_CLEARING' }));
  }

  async hangUp(leg: { transferId: string; legId: string; cause: string }): Promise<void> {
    this.record({ type: 'hangUp', ...leg });
  }

  async returnToAgent(legs: { transferId: string; reason: string }): Promise<void> {
    this.record({ type: 'returnToAgent', transferId: legs.transferId, reason: legs.reason });
  }

  async reconcile(transfers: readonly InFlightLegs[]): Promise<void> {
    this.record({ type: 'reconcile', transfers });
  }

  /** Emits a switch event as the driver would. */
  emit(event: CallControlEvent): void {
    this.emitter.emit('event', event);
  }

  onEvent(listener: (event: CallControlEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  onStatus(listener: (status: SwitchStatus) => void): () => void {
    this.emitter.on('status', listener);
    return () => this.emitter.off('status', listener);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }

  commandsFor(transferId: string): Command[] {
    return this.commands.filter((c) => 'transferId' in c && c.transferId === transferId || (c.type === 'placeCall' && c.request.transferId === transferId));
  }

  private later(work: () => void): void {
    if (this.eventDelayMs === 0) queueMicrotask(work);
    else setTimeout(work, this.eventDelayMs).unref();
  }
}
