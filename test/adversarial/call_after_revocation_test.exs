defmodule Keyring.Adversarial.CallAfterRevocationTest do
  # Attack (issue 8, item 13): requests admitted just before `remove_member`
  # ran up to 12 ms after it returned {:ok, _}. Now: when remove_member
  # returns, no handler of the removed key runs on that node and none starts.
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}

  test "no handler of a removed member runs or starts after remove_member returns" do
    [admin, member, honest] = [start_instance(:admin), start_instance(:m), start_instance(:h)]
    ring = ring_with(admin, [member, honest])
    table = :ets.new(:handler_log, [:public, :bag])
    member_key = key(member)

    :ok =
      Keyring.expose(
        :work,
        fn _, caller ->
          :ets.insert(table, {caller.key, :started, System.monotonic_time()})
          Process.sleep(30)
          :ets.insert(table, {caller.key, :finished, System.monotonic_time()})
          :ok
        end,
        instance: admin,
        keyring: ring
      )

    # The member floods the node with calls from many processes.
    flood =
      for _ <- 1..40 do
        Task.async(fn ->
          for _ <- 1..30,
              do: Keyring.call(id(admin), :work, nil, instance: member, timeout: 2_000)
        end)
      end

    eventually(fn -> :ets.lookup(table, member_key) != [] end, 10_000, "member's handlers")
    {:ok, _} = Keyring.Ring.remove_member(ring, member_key, instance: admin)
    returned = System.monotonic_time()
    Enum.each(flood, &Task.await(&1, 60_000))

    events = :ets.lookup(table, member_key)
    assert Enum.any?(events, &match?({_, :started, t} when t < returned, &1))
    late = for {_, kind, t} <- events, t > returned, do: kind
    assert late == [], "handler activity after remove_member returned: #{inspect(late)}"

    # The node still serves its honest member.
    assert {:ok, :ok} = Keyring.call(id(admin), :work, nil, instance: honest)
  end
end
