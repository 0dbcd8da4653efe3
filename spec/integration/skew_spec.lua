-- A fake cloud whose clock runs 15 minutes ahead: the first signed call is
-- rejected, the client reads the offset from the Date header, re-signs once and
-- succeeds; later calls use the corrected clock straight away.
local fake = require "support.fake"

local SMS = "/v2/sms/enduserapi/v2/sendPhoneSmsCode"

describe("clock skew against the fake cloud", function()
  before_each(function()
    fake.reset()
    fake.configure { clock_offset = 15 * 60 }
  end)
  after_each(function() fake.configure { clock_offset = 0 } end)

  it("corrects the clock from the Date header and keeps it", function()
    local lines = {}
    -- a base URL of its own, so the offset learnt here does not leak into other specs
    local url = fake.url:gsub("127%.0%.0%.1", "localhost")
    local c = fake.client { base_url = url, log = function(_, msg) lines[#lines + 1] = msg end }
    local seq = fake.seq()
    local res, err = c:send_phone_sms_code { phone = "13900000099", internationalCode = "86", codeType = 3 }
    assert.is_table(res, err)
    local sent = fake.requests(seq)
    assert.are.equal(2, #sent)
    local skew = (tonumber(sent[2].args.ts) - tonumber(sent[1].args.ts)) / 1000
    assert.is_true(math.abs(skew - 900) < 5, "re-signed with an offset of " .. skew)
    local said = tonumber(table.concat(lines, "\n"):match("local clock is (%d+)s off"))
    assert.is_true(said and math.abs(said - 900) <= 2, "logged offset " .. tostring(said))

    seq = fake.seq()
    local other = fake.client { base_url = url }
    assert(other:send_phone_sms_code { phone = "13900000098", internationalCode = "86", codeType = 3 })
    assert.are.equal(1, #fake.requests(seq))
    for _, r in ipairs(fake.requests(seq)) do assert.are.equal(SMS, r.path) end
  end)
end)
