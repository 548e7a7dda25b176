defmodule Keyring.CRDT.HLCTest do
  use ExUnit.Case, async: true

  alias Keyring.CRDT.HLC

  test "follows the wall clock forward, counts when it stands still, and jumps past what it saw" do
    clock = HLC.tick(HLC.new(), 1_000)
    assert clock == {1000, 0}
    clock = HLC.tick(clock, 1_000)
    assert clock == {1000, 1}
    assert HLC.observe(clock, {5_000, 7}, 1_001) == {5000, 8}
  end
end
