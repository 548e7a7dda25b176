defmodule Keyring.Adversarial.HandlerErrorLeakTest do
  # Attack (issue 8, item 17): exception messages and exit reasons, with the
  # call's arguments (a token, say), were sent to the remote caller. Now the
  # caller gets an opaque id; the detail is logged on the serving node.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import Keyring.Test.Instances

  setup do
    [a, b] = [start_instance(:a), start_instance(:b)]
    %{a: a, b: b, ring: ring_with(a, [b])}
  end

  test "a raising handler's message and arguments stay on the serving node", ctx do
    :ok =
      Keyring.expose(:login, fn token -> raise "bad token #{token}" end,
        instance: ctx.a,
        keyring: ctx.ring
      )

    log =
      capture_log(fn ->
        assert {:error, {:handler_error, "error " <> id}} =
                 Keyring.call(id(ctx.a), :login, "s3cr3t-token", instance: ctx.b)

        send(self(), {:id, id})
      end)

    assert_received {:id, id}
    assert id =~ ~r/^[0-9a-f]{8}$/
    assert log =~ "error #{id}"
    assert log =~ "s3cr3t-token"
  end

  test "exits and unencodable replies are opaque too", ctx do
    :ok = Keyring.expose(:quit, fn arg -> exit({:shutdown, arg}) end, instance: ctx.a)
    :ok = Keyring.expose(:pid, fn _ -> self() end, instance: ctx.a)

    capture_log(fn ->
      assert {:error, {:handler_error, "error " <> _}} =
               Keyring.call(id(ctx.a), :quit, "password=hunter2", instance: ctx.b)

      assert {:error, {:handler_error, "error " <> _}} =
               Keyring.call(id(ctx.a), :pid, nil, instance: ctx.b)
    end)
  end

  test "a handle may opt in to sending the detail", ctx do
    :ok =
      Keyring.expose(:debug, fn _ -> raise "visible" end, instance: ctx.a, expose_errors: true)

    assert {:error, {:handler_error, detail}} =
             Keyring.call(id(ctx.a), :debug, nil, instance: ctx.b)

    assert detail =~ "visible"
  end
end
