defmodule Keyring.Adversarial.CastFloodTest do
  # Attack (issue 8, item 18): casts spawned a process before `authorize`
  # and had no timeout, so a member could pile up handler processes. Now a
  # peer runs at most `max_handlers_per_peer` handlers (calls and casts),
  # casts are killed after the handle's timeout, and a refused caller never
  # reaches the handler.
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}

  @limit 8

  setup do
    node = start_instance(:node, mesh: [max_handlers_per_peer: @limit])
    [flooder, honest] = [start_instance(:flooder), start_instance(:honest)]
    ring = ring_with(node, [flooder, honest])
    %{node: node, flooder: flooder, honest: honest, ring: ring}
  end

  test "a cast flood runs at most max_handlers_per_peer handlers at once", ctx do
    running = :atomics.new(2, [])

    :ok =
      Keyring.expose(
        :slow,
        fn _ ->
          now = :atomics.add_get(running, 1, 1)
          max = :atomics.get(running, 2)
          if now > max, do: :atomics.compare_exchange(running, 2, max, now)
          Process.sleep(200)
          :atomics.sub(running, 1, 1)
        end,
        instance: ctx.node,
        keyring: ctx.ring
      )

    for _ <- 1..500, do: :ok = Keyring.cast(id(ctx.node), :slow, nil, instance: ctx.flooder)
    eventually(fn -> :atomics.get(running, 2) > 0 end, 10_000, "handlers to run")

    # The honest member's call is served meanwhile (its own budget).
    :ok = Keyring.expose(:echo, & &1, instance: ctx.node, keyring: ctx.ring)
    assert {:ok, 1} = Keyring.call(id(ctx.node), :echo, 1, instance: ctx.honest)

    eventually(fn -> :atomics.get(running, 1) == 0 end, 10_000, "flood to drain")
    assert :atomics.get(running, 2) <= @limit
  end

  test "a call beyond the budget is told :busy", ctx do
    :ok =
      Keyring.expose(:hold, fn _ -> Process.sleep(1_000) end,
        instance: ctx.node,
        keyring: ctx.ring
      )

    for _ <- 1..@limit, do: :ok = Keyring.cast(id(ctx.node), :hold, nil, instance: ctx.flooder)
    Process.sleep(200)
    assert {:error, :busy} = Keyring.call(id(ctx.node), :hold, nil, instance: ctx.flooder)
  end

  test "a cast handler that never returns is killed at its timeout", ctx do
    test = self()

    :ok =
      Keyring.expose(:stuck, fn _ -> send(test, {:stuck, self()}) && Process.sleep(:infinity) end,
        instance: ctx.node,
        keyring: ctx.ring,
        timeout: 200
      )

    :ok = Keyring.cast(id(ctx.node), :stuck, nil, instance: ctx.flooder)
    assert_receive {:stuck, pid}, 5_000
    ref = Process.monitor(pid)
    assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, 2_000
  end

  test "a cast the authorize function refuses never reaches the handler", ctx do
    test = self()

    :ok =
      Keyring.expose(:guarded, fn _ -> send(test, :ran) end,
        instance: ctx.node,
        keyring: ctx.ring,
        authorize: fn caller -> caller.key != key(ctx.flooder) end
      )

    :ok = Keyring.cast(id(ctx.node), :guarded, nil, instance: ctx.flooder)
    refute_receive :ran, 300
    :ok = Keyring.cast(id(ctx.node), :guarded, nil, instance: ctx.honest)
    assert_receive :ran, 5_000
  end
end
